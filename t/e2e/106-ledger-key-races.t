# One Idempotency-Key, many different requests at the same moment, many
# keys at once: each key gets exactly one 201 (its first transfer) and a
# 409 for every other request, never a 503.
#
# wrk keeps 48 connections busy; every request pays from one of a few
# users' wallets with a body of its own (the amount is unique) and a key
# from a small pool per user, so most keys are first used by several
# requests at once, landing in concurrent batches.  post_transfers() used
# to meet a unique violation there, retry the whole batch a bounded
# number of times and answer 503 (found by a bench script that shared
# keys between threads).
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $USERS   = 8;
my $KEYS    = 40;             # per user
my $SECONDS = 3;

plan skip_all => 'wrk is not installed' unless `sh -c 'command -v wrk'`;

my @users = map { user_id("racer$_") } 1 .. $USERS;
my @wallets = map { open_wallet($_, 'EUR') } @users;
fund($_, 1_000_000_000) for @wallets;
my $payee = open_wallet(user_id('racee'), 'EUR');
my $run = uid('race');

my $dir = tempdir(CLEANUP => 1);
open my $lua, '>', "$dir/race.lua" or die "$dir/race.lua: $!";
print $lua "local users = {\n";
for my $u (0 .. $#users) {
    printf $lua qq({"%s", "%s", "%s"},\n), $users[$u]{user}, $wallets[$u]{id},
        sign_identity(POST => '/v1/transfers', $users[$u]);
}
print $lua <<"LUA";
}
local payee, run, nkeys = "$payee->{id}", "$run", $KEYS
LUA
print $lua <<'LUA';
local threads, all = 0, {}
function setup(t) threads = threads + 1; t:set("tid", threads); all[threads] = t end
counter = 0
statuses = {}
function request()
    counter = counter + 1
    local i = math.random(#users)
    local body = string.format('{"from_account_id":"%s","to_account_id":"%s",' ..
        '"amount":%d,"currency":"EUR"}', users[i][2], payee,
        tid * 10000000 + counter)
    return wrk.format("POST", "/v1/transfers", {
        ["X-Kordon-User"] = users[i][1], ["X-Kordon-Roles"] = "user",
        ["X-Kordon-Signature"] = users[i][3],
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = string.format("%s-%d", run, math.random(nkeys))
    }, body)
end
function response(status) statuses[status] = (statuses[status] or 0) + 1 end
function done()
    for _, t in ipairs(all) do
        for k, v in pairs(t:get("statuses")) do
            io.write(string.format("status %d %d\n", k, v))
        end
    end
end
LUA
close $lua;

my $out = `wrk -t2 -c48 -d${SECONDS}s -s $dir/race.lua $ENV{KORDON_LEDGER_URL} 2>&1`;
my %status;
$status{$1} += $2 while $out =~ /^status (\d+) (\d+)$/mg;
my $total = 0;
$total += $_ for values %status;
cmp_ok $total, '>', 1000, "wrk made $total requests"
    or diag $out;
is join(',', sort grep { $_ != 201 && $_ != 409 } keys %status), '',
    'only 201 and 409 answers (' . join(' ', map { "$_: $status{$_}" }
    sort keys %status) . ')';

# Every body differs, so each key's one 201 is its first request's.
my $keys = sql_value("select count(*) from ledger.idempotency
    where key like '$run-%'");
cmp_ok $keys, '>', $USERS * $KEYS / 2, "most keys were used ($keys)";
is $status{201}, $keys, 'one 201 per key used';
is sql_value("select count(*) from ledger.idempotency
    where key like '$run-%' and code <> 'ok'"), 0, 'each key holds its transfer';
is sql_value("select count(*) from ledger.transfers
    where idempotency_key like '$run-%'"), $keys, 'one transfer per key';
is ledger(GET => "/v1/accounts/$payee->{id}", support_id())->{json}{posted},
    sql_value("select coalesce(sum(amount), 0) from ledger.transfers
               where idempotency_key like '$run-%'"),
    'the payee holds what those transfers moved';

invariants_ok('key races');
done_testing;
