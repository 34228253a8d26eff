package Kordon::Ledger;

# Kordon::Ledger -- fixtures for the ledger's end-to-end tests
# (t/e2e/1NN-ledger-*.t): calls straight to the ledger with a signed edge
# identity, fresh users with funded wallets, a check for problem+json
# answers, psql as the superuser, and the ledger's invariants read from
# PostgreSQL, so each test reads as requests and expected answers.
#
# Every user id is new per run (uid()), so the tests can run again on the
# same stack, and the invariants hold over everything in the database.

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use Test::More;

use Kordon::E2E;

our @EXPORT = qw(ledger uid user_id admin_id support_id open_wallet fund
    pay problem_ok invariants_ok psql_super sql_value key hold resolve);

my $json = JSON::PP->new->canonical;
my $seq  = 0;

# uid(prefix) -> an id no other run or process has used.
sub uid {
    my ($prefix) = @_;
    return sprintf '%s-%d-%d-%04x%04x', $prefix // 'u', $$, ++$seq,
        int rand 65536, int rand 65536;
}

sub user_id    { return { user => uid($_[0] // 'user'), roles => 'user' } }
sub admin_id   { return { user => uid('admin'), roles => 'user,admin' } }
sub support_id { return { user => uid('support'), roles => 'user,support' } }
sub key        { return uid('key') }

# ledger(METHOD, PATH, identity, body, {headers}) -> http() answer.  body
# is a Perl structure (sent as JSON) or a string (sent as is); a POST
# without an Idempotency-Key in headers gets none.
sub ledger {
    my ($method, $path, $id, $body, $extra) = @_;
    (my $signed = $path) =~ s/\?.*//;
    my $h = $id ? signed_headers($method, $signed, $id) : {};
    if (defined $body) {
        $h->{'Content-Type'} = 'application/json';
        $body = $json->encode($body) if ref $body;
    }
    %$h = (%$h, %{ $extra || {} });
    return http($method, "$ENV{KORDON_LEDGER_URL}$path", $h, $body);
}

# open_wallet(identity, currency) -> the account; dies unless opened.
sub open_wallet {
    my ($id, $currency) = @_;
    my $r = ledger(POST => '/v1/accounts', $id, { currency => $currency });
    die "could not open a $currency wallet: $r->{status} $r->{content}\n"
        unless $r->{status} == 201 || $r->{status} == 200;
    return $r->{json};
}

# fund(account, amount) -> the adjustment; an admin credits the account.
my $funder = { user => 'ledger-test-funder', roles => 'admin' };

sub fund {
    my ($account, $amount) = @_;
    my $r = ledger(POST => '/v1/admin/adjustments', $funder,
        { account_id => $account->{id}, amount => $amount,
          currency => $account->{currency}, direction => 'credit',
          reason => 'test funding' },
        { 'Idempotency-Key' => key() });
    die "could not fund $account->{id}: $r->{status} $r->{content}\n"
        unless $r->{status} == 201;
    return $r->{json};
}

# pay(identity, from, to, amount, [key, currency]) -> the answer.
sub pay {
    my ($id, $from, $to, $amount, $k, $currency) = @_;
    return ledger(POST => '/v1/transfers', $id,
        { from_account_id => $from->{id}, to_account_id => $to->{id},
          amount => $amount, currency => $currency // $from->{currency} },
        { 'Idempotency-Key' => $k // key() });
}

# problem_ok(answer, status, pointer or undef, detail regex, name)
sub problem_ok {
    my ($r, $status, $pointer, $detail_re, $name) = @_;
    my $ok = is $r->{status}, $status, "$name: $status";
    $ok &&= is $r->{headers}{'content-type'}, 'application/problem+json',
        "$name: problem+json";
    $ok &&= is $r->{json}{request_id}, $r->{headers}{'x-request-id'},
        "$name: request_id";
    $ok &&= like $r->{json}{detail} // '', $detail_re, "$name: detail"
        if $detail_re;
    if (defined $pointer) {
        my @p = map { $_->{pointer} } @{ $r->{json}{errors} || [] };
        $ok &&= ok((grep { $_ eq $pointer } @p), "$name: names $pointer")
            or diag "errors: " . $json->encode($r->{json}{errors} || []);
    }
    diag "answer: $r->{status} $r->{content}" unless $ok;
    return $ok;
}

# psql_super(SQL) -> (exit status, output with errors) as the superuser.
sub psql_super {
    my ($sql) = @_;
    my $pid = open my $fh, '-|';
    die "cannot fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec 'psql', '-X', '-w', '-q', '-tA', '-U', 'postgres',
            '-v', 'ON_ERROR_STOP=1', '-c', $sql;
        exit 127;
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    chomp $out;
    return ($? >> 8, $out);
}

sub sql_value { return psql_reader($_[0]) }

# invariants_ok(name): what must hold over the whole ledger at any time.
sub invariants_ok {
    my ($name) = @_;
    is sql_value(q{
        select count(*) from (
            select currency from ledger.accounts group by currency
            having sum(debits_posted) <> sum(credits_posted)
                or sum(debits_pending) <> sum(credits_pending)) x}), 0,
        "$name: per currency, debits equal credits (double entry)";
    is sql_value(q{
        with moved as (
            select debit_account_id as id, amount as d, 0 as c, status
              from ledger.transfers
            union all
            select credit_account_id, 0, amount, status
              from ledger.transfers),
        sums as (
            select id,
                   sum(d) filter (where status = 'posted') as dp,
                   sum(c) filter (where status = 'posted') as cp,
                   sum(d) filter (where status = 'pending') as dpend,
                   sum(c) filter (where status = 'pending') as cpend
              from moved group by id)
        select count(*) from ledger.accounts a left join sums s using (id)
         where a.debits_posted <> coalesce(s.dp, 0)
            or a.credits_posted <> coalesce(s.cp, 0)
            or a.debits_pending <> coalesce(s.dpend, 0)
            or a.credits_pending <> coalesce(s.cpend, 0)}), 0,
        "$name: every account's totals recomputed from its transfers";
    # Transfers carry no foreign keys (sql/ledger/014): the posting
    # functions check both accounts under their row locks; this proves it.
    is sql_value(q{
        select count(*) from ledger.transfers t
          left join ledger.accounts d on d.id = t.debit_account_id
          left join ledger.accounts c on c.id = t.credit_account_id
         where d.currency is distinct from t.currency
            or c.currency is distinct from t.currency}), 0,
        "$name: every transfer's two accounts exist, in its currency";
    is sql_value(q{
        select count(*) from ledger.accounts
         where debits_must_not_exceed_credits
           and debits_posted + debits_pending > credits_posted}), 0,
        "$name: no wallet below zero available";
    is sql_value(q{
        select count(*)
          from (select id from ledger.transfers where status = 'posted') t
          full join (select subject, count(*) as n from ledger.outbox
                      where type = 'ledger.transfer.posted'
                      group by subject) o on o.subject = t.id::text
         where t.id is null or o.n is distinct from 1}), 0,
        "$name: one event per posted transfer, none without one";
    is sql_value(q{
        select count(*) from ledger.idempotency i
         where i.code = 'ok'
           and not exists (select from ledger.transfers t
                            where t.id = i.transfer_id)}), 0,
        "$name: every recorded success has its transfer";
    is sql_value(q{
        select count(*) from ledger.holds h
          join ledger.transfers t on t.id = h.id
         where t.kind <> 'hold' or t.amount <> h.amount
            or (h.state = 'pending') <> (t.status = 'pending')
            or (h.state <> 'pending' and t.status <> 'voided')}), 0,
        "$name: each hold's pending transfer is pending until it resolves";
    is sql_value(q{
        select count(*) from ledger.holds h
          full join (select parent_id, count(*) as n, sum(amount) as s
                       from ledger.transfers where kind = 'capture'
                      group by parent_id) c on c.parent_id = h.id
         where h.id is null
            or (h.state = 'captured') <> (c.n is not null)
            or c.n > 1 or c.s > h.amount
            or (c.n is not null and c.s <> h.captured)}), 0,
        "$name: a hold resolved at most once; captures only of captured holds";
    is sql_value(q{
        select count(*) from ledger.holds h
          left join (select subject, count(*) filter (where type =
                            'ledger.hold.created') as made,
                            count(*) filter (where type in
                            ('ledger.hold.captured', 'ledger.hold.voided',
                             'ledger.hold.expired')) as ended
                       from ledger.outbox where type like 'ledger.hold.%'
                      group by subject) e on e.subject = h.id::text
         where e.made is distinct from 1
            or e.ended <> (h.state <> 'pending')::int}), 0,
        "$name: one event when a hold is made, one when it resolves";
}

# hold(identity, from, to, amount, {expires_in, key}) -> the answer.
sub hold {
    my ($id, $from, $to, $amount, $opt) = @_;
    $opt ||= {};
    return ledger(POST => '/v1/holds', $id,
        { from_account_id => $from->{id}, to_account_id => $to->{id},
          amount => $amount, currency => $opt->{currency} // $from->{currency},
          (defined $opt->{expires_in} ? (expires_in => $opt->{expires_in}) : ()) },
        { 'Idempotency-Key' => $opt->{key} // key() });
}

# resolve(identity, hold id, capture|void, body, key) -> the answer.
sub resolve {
    my ($id, $hold, $op, $body, $k) = @_;
    return ledger(POST => "/v1/holds/$hold/$op", $id, $body // {},
        { 'Idempotency-Key' => $k // key() });
}

1;
