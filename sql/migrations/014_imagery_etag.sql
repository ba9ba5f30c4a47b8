-- The entity tag of an image read from a URL (HTTP ETag or S3 object ETag), as registration saw
-- it: a part job refuses an object whose ETag (or, for any image, size) has changed since, rather
-- than mix two versions of a scene. Null for local files.
alter table imagery add column etag text;
