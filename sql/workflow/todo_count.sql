-- How many patches wait on the user, and how many of them are past their deadline (todo.sql's parameters, and :today).
select count(*)::int as total,
       count(*) filter (where patch_running_due(p.status, p.verify_due, p.rectify_due) < :today::date)::int as overdue
from patch p
/*include workflow/todo_filter*/;
