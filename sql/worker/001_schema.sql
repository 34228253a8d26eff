-- The worker schema: owned by backends/worker and read by nobody else.
comment on schema worker is 'background jobs, schedules, reports, archiving, fraud rules';
