-- Currencies: the ISO 4217 code and its exponent, the number of digits
-- after the decimal point.  Every amount in the ledger is a bigint count of
-- minor units (1234 in EUR is 12.34, 1234 in JPY is 1234, 1234 in KWD is
-- 1.234); the exponent only says how to show it.  Adding a row here opens
-- the currency: 003_accounts.sql makes its system accounts by trigger.
create table currencies (
    code      text     primary key,
    exponent  smallint not null,
    name      text     not null,
    constraint currencies_code check (code ~ '^[A-Z]{3}$'),
    constraint currencies_exponent check (exponent between 0 and 4)
);

comment on table currencies is
    'ISO 4217 currencies the ledger holds; amounts are bigint minor units';

revoke insert, update, delete on currencies from kordon_ledger;

insert into currencies (code, exponent, name) values
    ('AED', 2, 'UAE Dirham'),
    ('AUD', 2, 'Australian Dollar'),
    ('BGN', 2, 'Bulgarian Lev'),
    ('BHD', 3, 'Bahraini Dinar'),
    ('BRL', 2, 'Brazilian Real'),
    ('CAD', 2, 'Canadian Dollar'),
    ('CHF', 2, 'Swiss Franc'),
    ('CLP', 0, 'Chilean Peso'),
    ('CNY', 2, 'Yuan Renminbi'),
    ('CZK', 2, 'Czech Koruna'),
    ('DKK', 2, 'Danish Krone'),
    ('EUR', 2, 'Euro'),
    ('GBP', 2, 'Pound Sterling'),
    ('HKD', 2, 'Hong Kong Dollar'),
    ('HUF', 2, 'Forint'),
    ('IDR', 2, 'Rupiah'),
    ('ILS', 2, 'New Israeli Sheqel'),
    ('INR', 2, 'Indian Rupee'),
    ('ISK', 0, 'Iceland Krona'),
    ('JOD', 3, 'Jordanian Dinar'),
    ('JPY', 0, 'Yen'),
    ('KRW', 0, 'Won'),
    ('KWD', 3, 'Kuwaiti Dinar'),
    ('MXN', 2, 'Mexican Peso'),
    ('NOK', 2, 'Norwegian Krone'),
    ('NZD', 2, 'New Zealand Dollar'),
    ('OMR', 3, 'Rial Omani'),
    ('PLN', 2, 'Zloty'),
    ('RON', 2, 'Romanian Leu'),
    ('SEK', 2, 'Swedish Krona'),
    ('SGD', 2, 'Singapore Dollar'),
    ('THB', 2, 'Baht'),
    ('TND', 3, 'Tunisian Dinar'),
    ('TRY', 2, 'Turkish Lira'),
    ('UAH', 2, 'Hryvnia'),
    ('USD', 2, 'US Dollar'),
    ('VND', 0, 'Dong'),
    ('ZAR', 2, 'Rand');
