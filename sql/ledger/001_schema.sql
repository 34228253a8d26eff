-- The ledger schema: owned by backends/ledger and read by nobody else.
comment on schema ledger is 'money: accounts, double-entry transfers, holds, fees, statements';
