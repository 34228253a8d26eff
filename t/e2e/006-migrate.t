# Migrations: applied once, in order, each in its own transaction; a
# failing file stops the run with its name and PostgreSQL's error and
# leaves nothing of itself; an applied file may not change.  Each service
# role may touch its own schema only; the reader role reads everything.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use Kordon::E2E;

my $top = top_dir();
my $count = psql_reader("select count(*) from kordon_meta.migrations");

my $out = qx{$top/scripts/migrate 2>&1};
is $?, 0, 'migrate again succeeds';
unlike $out, qr/applied/, 'and applies nothing';
is psql_reader("select count(*) from kordon_meta.migrations"), $count,
    'nothing new recorded';

# A copy of sql/ with one failing migration for the worker.
my $tmp = tempdir(CLEANUP => 1);
system('cp', '-r', "$top/sql", "$tmp/sql") == 0 or die;
open my $fh, '>', "$tmp/sql/worker/900_broken.sql" or die;
print $fh "create table half_done (id int);\nselect no_such_column from no_such_table;\n";
close $fh;
$out = qx{KORDON_SQL=$tmp/sql $top/scripts/migrate 2>&1};
isnt $?, 0, 'a failing migration fails the run';
like $out, qr/900_broken\.sql/, 'naming the file';
like $out, qr/no_such_table/, 'with the PostgreSQL error';
is psql_reader("select count(*) from pg_tables where tablename = 'half_done'"),
    0, 'and nothing of the file was applied';

# An applied migration changed afterwards.
unlink "$tmp/sql/worker/900_broken.sql";
open $fh, '>>', "$tmp/sql/worker/001_schema.sql" or die;
print $fh "-- edited\n";
close $fh;
$out = qx{KORDON_SQL=$tmp/sql $top/scripts/migrate 2>&1};
isnt $?, 0, 'an edited migration is refused';
like $out, qr/001_schema\.sql.*changed after it was applied/, 'and said so';

# Least privilege.
sub as_role {
    my ($role, $sql) = @_;
    my $o = qx{psql -X -w -q -tA -U $role -c "$sql" 2>&1};
    return ($? == 0, $o);
}
my ($ok, $o) = as_role('kordon_kitd', 'select count(*) from outbox');
ok $ok, 'a service reads its own schema (search_path set)';
($ok, $o) = as_role('kordon_kitd', 'select count(*) from users.outbox');
ok !$ok, 'but not another service\'s';
like $o, qr/permission denied/, 'permission denied';
($ok, $o) = as_role('kordon_kitd', 'create table kitd.sneaky (i int)');
ok !$ok, 'and may not change its schema';
($ok, $o) = as_role('kordon_ledger', 'show jit');
is $o, "off\n", 'service roles run without JIT (no seconds of LLVM under row locks)';
($ok, $o) = as_role('kordon_reader', 'select count(*) from users.outbox');
ok $ok, 'the reader reads every schema';
($ok, $o) = as_role('kordon_reader', 'delete from users.outbox');
ok !$ok, 'but writes nothing';

done_testing;
