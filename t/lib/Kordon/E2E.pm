package Kordon::E2E;

# Kordon::E2E -- fixtures for the end-to-end tests in t/e2e/.
#
# The tests run against a whole stack that scripts/test started with
# scripts/stack in .run/e2e; its .run/e2e/env is in %ENV.  This module
# holds what every test needs so that the tests themselves read as
# requests and expected answers: an HTTP client that trusts the local CA,
# the edge's identity signature (the same bytes as backends/common's
# kit_sig_sign), psql as the reader role, the Kafka topic reader (kcat),
# the stack script, and a bounded wait.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use Exporter 'import';
use File::Spec;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep time);

our @EXPORT = qw(http edge kitd sign_identity signed_headers psql_reader
    kafka_read stack pid_of wait_until json_of top_dir);

my $json = JSON::PP->new->canonical;

sub top_dir {
    my $d = File::Spec->rel2abs(__FILE__);
    $d =~ s{/t/lib/Kordon/E2E\.pm$}{};
    return $d;
}

# http(METHOD, URL, {headers}, BODY) -> {status, headers, content, json}
# HTTPS is verified against $KORDON_CA.  Never dies on an HTTP error.
sub http {
    my ($method, $url, $headers, $body) = @_;
    my $ua = HTTP::Tiny->new(
        timeout         => 30,
        max_redirect    => 0,
        verify_SSL      => 1,
        SSL_options     => { SSL_ca_file => $ENV{KORDON_CA} },
        keep_alive      => 0,
    );
    my %opt = (headers => $headers || {});
    $opt{content} = $body if defined $body;
    my $r = $ua->request($method, $url, \%opt);
    $r->{json} = json_of($r->{content});
    return $r;
}

sub edge { my ($m, $path, @rest) = @_; http($m, "$ENV{KORDON_URL}$path", @rest) }
sub kitd { my ($m, $path, @rest) = @_; http($m, "$ENV{KORDON_KITD_URL}$path", @rest) }

sub json_of {
    my ($s) = @_;
    return undef unless defined $s && length $s;
    return eval { $json->decode($s) };
}

sub edge_secret {
    open my $fh, '<', $ENV{KORDON_EDGE_SECRET_FILE}
        or die "cannot read \"$ENV{KORDON_EDGE_SECRET_FILE}\": $!";
    my $hex = <$fh>;
    $hex =~ s/\s+//g;
    return pack 'H*', $hex;
}

# sign_identity(method, path, {user, roles, session, request_id}, t, key)
# -> the X-Kordon-Signature value.  t defaults to now, key to the stack's.
sub sign_identity {
    my ($method, $path, $id, $t, $key) = @_;
    $t //= time;
    $t = int $t;
    $key //= edge_secret();
    my $msg = join "\n", 'kordon-v1', $method, $path,
        map({ $id->{$_} // '' } qw(user roles session request_id)), $t;
    return "t=$t,v1=" . hmac_sha256_hex($msg, $key);
}

# signed_headers(method, path, {identity}, [t, key]) -> headers hash
sub signed_headers {
    my ($method, $path, $id, @rest) = @_;
    my %h = ('X-Kordon-Signature' => sign_identity($method, $path, $id, @rest));
    $h{'X-Kordon-User'}    = $id->{user}       if defined $id->{user};
    $h{'X-Kordon-Roles'}   = $id->{roles}      if defined $id->{roles};
    $h{'X-Kordon-Session'} = $id->{session}    if defined $id->{session};
    $h{'X-Request-Id'}     = $id->{request_id} if defined $id->{request_id};
    return \%h;
}

# psql_reader(SQL) -> first column of the first row ('' when none).  Dies
# on a SQL error, with psql's message.
sub psql_reader {
    my ($sql) = @_;
    open my $fh, '-|', 'psql', '-X', '-w', '-q', '-tA', '-v',
        'ON_ERROR_STOP=1', '-c', $sql or die "cannot run psql: $!";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    die "psql failed ($?): $sql\n" if $?;
    chomp $out;
    return $out;
}

# kafka_read(topic) -> list of {key, value} from the start of the topic,
# everything the broker had at the time of the call.
sub kafka_read {
    my ($topic) = @_;
    my @cmd = ('kcat', '-b', $ENV{KAFKA_BOOTSTRAP}, '-C', '-t', $topic,
        '-o', 'beginning', '-e', '-q', '-f', '%k\t%s\n');
    open my $fh, '-|', @cmd or die "cannot run kcat: $!";
    my @msgs;
    while (my $line = <$fh>) {
        chomp $line;
        my ($k, $v) = split /\t/, $line, 2;
        push @msgs, { key => $k, value => json_of($v) };
    }
    close $fh;
    return @msgs;
}

# stack(ARGS...) -> exit code of scripts/stack with the test env.
sub stack {
    my @args = @_;
    system(top_dir() . '/scripts/stack', @args);
    return $? >> 8;
}

sub pid_of {
    my ($file) = @_;
    open my $fh, '<', "$ENV{KORDON_RUN}/$file" or return undef;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

# wait_until(CODE, seconds) -> the first true value CODE returned, or
# undef after the deadline.  Polls every 0.1 s.
sub wait_until {
    my ($code, $secs) = @_;
    my $deadline = time + ($secs // 10);
    while (time < $deadline) {
        my $v = $code->();
        return $v if $v;
        sleep 0.1;
    }
    return undef;
}

1;
