# The users schema's guarantees and the password pool: the audit table
# is append-only even for the superuser; the service role cannot delete
# people; a login re-hashes a password stored at a lower cost once the
# cost is raised; a burst of logins beyond the pool's queue is answered
# 503 at once, and other requests are served while logins wait.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use Kordon::E2E;
use Kordon::Users;

sub restart_users {
    my (%env) = @_;
    delete $ENV{$_} for grep { /^KORDON_USERS_/ } keys %ENV;
    $ENV{$_} = $env{$_} for keys %env;
    return stack(stop => 'users') == 0 && stack(start => 'users') == 0;
}

# Append-only audit, people never deleted.
my $email = new_address('schema');
my $uid = signup($email);
my ($rc, $out) = psql_super("update users.audit set action = 'x' where subject = '$uid'");
isnt $rc, 0, 'the superuser cannot update an audit row';
like $out, qr/never updated or deleted/, '... the trigger says why';
($rc, $out) = psql_super("delete from users.audit where subject = '$uid'");
isnt $rc, 0, 'nor delete one';
($rc, $out) = psql_super('truncate users.audit');
isnt $rc, 0, 'nor truncate the table';
my $svc = sub {
    my ($sql) = @_;
    my $o = qx{psql -X -w -q -tA -U kordon_users -v ON_ERROR_STOP=1 -c "$sql" 2>&1};
    return ($? >> 8, $o);
};
($rc, $out) = $svc->("delete from users.users where id = '$uid'");
isnt $rc, 0, 'the service role cannot delete a person';
like $out, qr/permission denied/, '... permission denied';
($rc, $out) = $svc->("insert into users.audit (action) values ('probe')");
is $rc, 0, 'the service role appends audit rows';
($rc, $out) = psql_super("insert into users.users (email) values ('Upper\@Case.io')");
isnt $rc, 0, 'an email not lower-cased is refused by the table';
($rc, $out) = psql_super("insert into users.users (phone) values ('+0123456789')");
isnt $rc, 0, 'a phone not in E.164 is refused by the table';

# Re-hash on login once the cost is raised.
like psql_reader("select password_hash from users.users where id = '$uid'"),
    qr/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'stored at the default cost (19 MiB, t=2, p=1)';
ok restart_users(KORDON_USERS_ARGON2_TIME => 3), 'users restarted with t=3';
ok login($email)->{access_token}, 'the old hash still verifies';
like psql_reader("select password_hash from users.users where id = '$uid'"),
    qr/^\$argon2id\$v=19\$m=19456,t=3,p=1\$/, 'and the login re-hashed it at t=3';
ok login($email)->{access_token}, 'the new hash verifies';

# A small pool: one thread, two waiting jobs, a slow hash.
ok restart_users(KORDON_USERS_HASH_THREADS => 1, KORDON_USERS_HASH_QUEUE => 2,
                 KORDON_USERS_ARGON2_TIME => 8),
    'users restarted with 1 hashing thread, a queue of 2, t=8';
my $token = login($email)->{access_token};
my $dir = "$ENV{KORDON_RUN}/burst-$$";
mkdir $dir;
my $n = 12;
my @kids;
for my $i (1 .. $n) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $r = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD });
        open my $fh, '>', "$dir/$i" or exit 1;
        printf $fh "%d %.6f %s %s\n", $r->{status}, time,
            $r->{headers}{'retry-after'} // '-', $r->{headers}{'content-type'} // '-';
        close $fh;
        exit 0;
    }
    push @kids, $pid;
}
sleep 0.1;
my $me = api(GET => '/v1/users/me', undef, $token);
my $me_done = time;
waitpid $_, 0 for @kids;
my @res = map { open my $fh, '<', "$dir/$_" or die; my $l = <$fh>; [split ' ', $l] } 1 .. $n;
system('rm', '-rf', $dir);
my @ok = grep { $_->[0] == 200 } @res;
my @busy = grep { $_->[0] == 503 } @res;
is scalar(@ok) + scalar(@busy), $n, 'every login of the burst is 200 or 503';
cmp_ok scalar(@ok), '>=', 1, scalar(@ok) . ' logged in';
cmp_ok scalar(@busy), '>=', 1, scalar(@busy) . ' refused at once: the queue is bounded';
ok !(grep { $_->[2] !~ /^\d+$/ || $_->[3] ne 'application/problem+json' } @busy),
    'each 503 is problem+json with Retry-After';
is $me->{status}, 200, 'GET /v1/users/me during the burst';
my $last = (sort { $b <=> $a } map { $_->[1] } @ok)[0];
cmp_ok $me_done, '<', $last, 'answered while logins still waited for the pool';

ok restart_users(), 'users back to its defaults';
ok login($email)->{access_token}, 'and logins work';

done_testing;
