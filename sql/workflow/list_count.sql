-- How many patches the list's filter keeps (list.sql's parameters): counted apart from the page, so a
-- page costs what it shows, not what the whole filter matches.
select count(*)::int as total
from patch p
/*include workflow/list_filter*/;
