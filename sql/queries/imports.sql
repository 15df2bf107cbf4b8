-- owner: slotmill.imports
-- `slotmill import` (slotmill/imports.py): the file's staff members by id or name.

-- name: import_staff
-- Every staff member of the tenant: a file names them by id or display name.
SELECT id, display_name FROM staff WHERE tenant_id = %(tenant_id)s;
