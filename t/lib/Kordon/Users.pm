package Kordon::Users;

# Kordon::Users -- fixtures for the users e2e tests (t/e2e/2NN-users-*.t),
# so that a test reads as requests through the edge and answers.
#
#   api(METHOD, path, body, token, {headers})  through the edge, JSON body
#   new_address()                  a fresh email nobody registered
#   code_for(address, type)        the code of the newest event of type
#                                  for address on users.events, waiting
#                                  for it (as notify will read it)
#   events_for(address, type)      every such event
#   signup(email, password)        register + verify; returns the user id
#   login(email, password)         the token answer (dies unless 200)
#   claims(token), header(token)   a JWT's decoded parts
#   revocations()                  the kordon:revocations stream entries
#                                  as [{id, sub|sid, nbf}]
#   audit_count(action, subject)   rows in users.audit
#   totp_code(base32, offset)      the RFC 6238 code (SHA-1, 6 digits,
#                                  30 s) for now + offset steps

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;
use Digest::SHA qw(hmac_sha1);
use MIME::Base64 qw(decode_base64);
use Test::More;
use Time::HiRes qw(time);
use Kordon::E2E;
use Kordon::Ledger qw(problem_ok psql_super);

our @EXPORT = qw(api new_address code_for events_for signup login claims
    header revocations audit_count problem_ok psql_super redis_cli
    totp_code PASSWORD);

use constant PASSWORD => 'correct horse battery staple';

my $json = JSON::PP->new->canonical->utf8;
my $n = 0;

sub api {
    my ($method, $path, $body, $token, $extra) = @_;
    my %h = %{ $extra || {} };
    $h{Authorization} = "Bearer $token" if $token;
    if (defined $body) {
        $h{'Content-Type'} //= 'application/json';
        $body = $json->encode($body) if ref $body;
    }
    return edge($method, $path, \%h, $body);
}

sub new_address {
    my ($tag) = @_;
    $n++;
    return sprintf '%s-%d-%d-%d@test.kordon.dev', $tag // 'u', $$, int(time * 1000), $n;
}

sub events_for {
    my ($address, $type) = @_;
    return grep {
        my $v = $_->{value};
        $v && $v->{type} eq $type
            && (($v->{data}{email} // $v->{data}{phone} // '') eq lc $address)
    } kafka_read('users.events');
}

sub code_for {
    my ($address, $type) = @_;
    my @e;
    wait_until(sub { @e = events_for($address, $type // 'user.verification_requested'); @e }, 20)
        or return undef;
    return $e[-1]{value}{data}{code};
}

sub signup {
    my ($email, $password) = @_;
    my $r = api(POST => '/v1/auth/register',
        { email => $email, password => $password // PASSWORD });
    die "register: $r->{status} $r->{content}" unless $r->{status} == 202;
    my $code = code_for($email) or die "no code for $email";
    $r = api(POST => '/v1/auth/verify', { email => $email, code => $code });
    die "verify: $r->{status} $r->{content}" unless $r->{status} == 200;
    return psql_reader("select id from users.users where email = '\L$email\E'");
}

sub login {
    my ($email, $password, $extra) = @_;
    my $r = api(POST => '/v1/auth/login',
        { email => $email, password => $password // PASSWORD, %{ $extra || {} } });
    die "login: $r->{status} $r->{content}" unless $r->{status} == 200;
    return $r->{json};
}

sub b64url_json {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_json(decode_base64($s));
}

sub header { b64url_json((split /\./, $_[0])[0]) }
sub claims { b64url_json((split /\./, $_[0])[1]) }

sub redis_cli {
    my @args = @_;
    my ($port) = $ENV{REDIS_URL} =~ m{:(\d+)/};
    open my $fh, '-|', 'redis-cli', '-p', $port, @args or die "redis-cli: $!";
    my @out = <$fh>;
    close $fh;
    chomp @out;
    return @out;
}

# XRANGE kordon:revocations - + : lines id, field, value, field, value
sub revocations {
    my @l = redis_cli('XRANGE', 'kordon:revocations', '-', '+');
    my @out;
    while (@l >= 5) {
        my ($id, $k1, $v1, $k2, $v2) = splice @l, 0, 5;
        push @out, { id => $id, $k1 => $v1, $k2 => $v2 };
    }
    return @out;
}

# Computed here, independently of liboath, as an authenticator app does.
sub totp_code {
    my ($b32, $offset) = @_;
    my $bits = join '', map {
        sprintf '%05b', index('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', $_)
    } split //, uc $b32;
    my $key = pack 'B*', substr($bits, 0, length($bits) - length($bits) % 8);
    my $step = int(time() / 30) + ($offset // 0);
    my $h = hmac_sha1(pack('N2', int($step / 2**32), $step % 2**32), $key);
    my $o = ord(substr $h, -1) & 0x0f;
    my $n = unpack('N', substr $h, $o, 4) & 0x7fffffff;
    return sprintf '%06d', $n % 1_000_000;
}

sub audit_count {
    my ($action, $subject) = @_;
    return psql_reader("select count(*) from users.audit where action = '$action'"
        . ($subject ? " and subject = '$subject'" : ''));
}

1;
