DROP TABLE break_glass;
DROP TABLE staff_tokens;
DROP TABLE staff_sessions;
DROP TABLE staff_users;
