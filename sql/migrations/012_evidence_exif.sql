-- Where and when a photo was taken, as its camera recorded it (EXIF): the inspector's proof of a
-- site visit. taken_at is the camera's clock as written (YYYY-MM-DDTHH:MM:SS, with its offset when
-- the camera recorded one); lon/lat are WGS 84 degrees from the GPS tags. Null when the photo has none.
alter table evidence add column taken_at text;
alter table evidence add column lon double precision;
alter table evidence add column lat double precision;
