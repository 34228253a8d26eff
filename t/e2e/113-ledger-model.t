# The ledger against an in-memory reference model in C
# (t/fixtures/ledgermodel): the same random transfers, key retries and
# misuses, holds, captures (some above the hold), voids and refunds go to
# both, and every answer and every balance must agree.  The seed is
# printed; LEDGER_SEED=<n> replays a run, LEDGER_MODEL_OPS sets its
# length (300).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $seed = $ENV{LEDGER_SEED} // int rand 1_000_000;
my $ops = $ENV{LEDGER_MODEL_OPS} // 300;
diag "LEDGER_SEED=$seed";
my $build = $ENV{KORDON_BUILD} // 'build';
$build = top_dir() . "/$build" unless $build =~ m{^/};
my $bin = "$build/t/fixture-ledgermodel";
ok -x $bin, 'the model is built';
my $out = `$bin $seed $ops 2>&1`;
is $?, 0, "the ledger and the model agree over $ops operations"
    or diag $out;
like $out, qr/agree after $ops operations/, 'to the end';
invariants_ok('model run');
done_testing;
