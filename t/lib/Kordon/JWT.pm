package Kordon::JWT;

# Kordon::JWT -- keys, tokens and the kit fixture for the edge's JWT
# tests (t/010-*.t to t/013-*.t), so that a test block reads as a config,
# a request and an answer.
#
# Everything secret is made when the test starts, in a temporary
# directory, with the openssl command line: an RSA-2048 key "rsa-1", a
# P-256 key "ec-1", a 32-byte HMAC key "hs-1", and "someone else's" keys
# of each kind.  The JWKS files are built from `openssl pkey -text`
# output; tokens are signed with `openssl dgst -sign` (ES256's DER
# signature turned into r || s here) or `-mac HMAC`.  Nothing is
# committed.
#
#   token(%claims_and_options)     a compact JWS; see token() below
#   bearer(...)                    "Authorization: Bearer " . token(...)
#   jwt_http()                     the http{} lines every test needs
#   jwt_preprocessor(%defaults)    for add_block_preprocessor(): see below
#   auth_requests($line, @values)  raw requests, one per Authorization
#   jwks_write($name, @kids)       (re)writes $TEST_NGINX_JWT_DIR/$name.json
#   kitd_start()                   the kit's test service, on a free port
#
# Environment set for the blocks: TEST_NGINX_JWT_DIR, TEST_NGINX_JWKS (all
# three keys), TEST_NGINX_IDENTITY_KEY, TEST_NGINX_OTHER_KEY (another
# valid identity key), TEST_NGINX_KITD_PORT (after kitd_start).

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(token bearer jwt_http jwt_preprocessor auth_requests
    jwks_write jwks_text kitd_start b64url jwt_dir identity_key_hex);

our $ISS = 'https://users.kordon.test';
our $AUD = 'kordon-edge';

my $Json = JSON::PP->new->canonical;
my $Dir = tempdir('kordon-jwt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $Parent = $$;
my (%Pem, %Jwk, %Hmac, $KitdPid);

sub jwt_dir { $Dir }

sub b64url {
    my $s = encode_base64(shift, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

# Runs a command, returns its output; its stderr (genpkey's progress
# dots) is dropped unless it fails.
sub run {
    my @cmd = @_;
    open my $save, '>&', \*STDERR or die "cannot dup stderr: $!";
    open STDERR, '>', "$Dir/openssl.err" or die "cannot redirect: $!";
    my $ok = open my $fh, '-|', @cmd;
    open STDERR, '>&', $save or die "cannot restore stderr: $!";
    $ok or die "cannot run @cmd: $!";
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh or die "@cmd failed ($?): " . slurp("$Dir/openssl.err");
    return $out;
}

sub write_file {
    my ($path, $data) = @_;
    open my $fh, '>', $path or die "cannot write \"$path\": $!";
    binmode $fh;
    print $fh $data;
    close $fh or die "cannot write \"$path\": $!";
}

# The hex dump of `openssl pkey -text` after a label ("Modulus:", "pub:")
# as bytes, leading 00 of a positive integer dropped.
sub text_bytes {
    my ($text, $label) = @_;
    my ($hex) = $text =~ /^\Q$label\E\s*\n((?:\s+[0-9a-f:]+\n)+)/m
        or die "no \"$label\" in openssl output:\n$text";
    $hex =~ s/[\s:]//g;
    return pack 'H*', $hex;
}

sub rsa_key {
    my ($kid) = @_;
    my $pem = "$Dir/$kid.pem";
    run('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
        'rsa_keygen_bits:2048', '-out', $pem);
    my $text = run('openssl', 'pkey', '-in', $pem, '-pubout', '-text',
                   '-noout');
    my $n = text_bytes($text, 'Modulus:');
    $n =~ s/^\0//;
    my ($e) = $text =~ /^Exponent: (\d+)/m or die "no exponent:\n$text";
    my $eb = pack('N', $e) =~ s/^\0+//r;
    $Pem{$kid} = $pem;
    $Jwk{$kid} = { kty => 'RSA', kid => $kid, alg => 'RS256', use => 'sig',
                   n => b64url($n), e => b64url($eb) };
}

sub ec_key {
    my ($kid) = @_;
    my $pem = "$Dir/$kid.pem";
    run('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
        'ec_paramgen_curve:P-256', '-out', $pem);
    my $text = run('openssl', 'pkey', '-in', $pem, '-noout', '-text');
    my $pub = text_bytes($text, 'pub:');
    die "not an uncompressed P-256 point\n" unless length $pub == 65;
    $Pem{$kid} = $pem;
    $Jwk{$kid} = { kty => 'EC', kid => $kid, alg => 'ES256', crv => 'P-256',
                   x => b64url(substr($pub, 1, 32)),
                   y => b64url(substr($pub, 33, 32)) };
}

sub hmac_key {
    my ($kid) = @_;
    my $k = run('openssl', 'rand', '32');
    $Hmac{$kid} = $k;
    $Jwk{$kid} = { kty => 'oct', kid => $kid, alg => 'HS256',
                   k => b64url($k) };
}

# The JWKS text of the given kids (a kid may be a ready JWK hash).
sub jwks_text {
    my @keys = map { ref $_ ? $_ : $Jwk{$_} // die "no key \"$_\"" } @_;
    return $Json->encode({ keys => \@keys });
}

sub jwks_write {
    my ($name, @kids) = @_;
    my $path = "$Dir/$name.json";
    write_file($path, jwks_text(@kids));
    return $path;
}

sub identity_key_hex {
    my ($name) = @_;
    my $path = "$Dir/$name.key";
    open my $fh, '<', $path or die "cannot read \"$path\": $!";
    local $/;
    my $hex = <$fh>;
    $hex =~ s/\s+//g;
    return $hex;
}

# ECDSA-Sig-Value (DER) to JWS's fixed r || s.
sub der_to_raw {
    my ($der) = @_;
    my @b = unpack 'C*', $der;
    my $i = 2;
    $i++ if $b[1] & 0x80;          # long form never happens for P-256
    my @out;
    for (1, 2) {
        die "bad DER signature\n" unless $b[$i] == 0x02;
        my $len = $b[$i + 1];
        my $v = pack 'C*', @b[$i + 2 .. $i + 1 + $len];
        $v =~ s/^\0+//;
        push @out, ("\0" x (32 - length $v)) . $v;
        $i += 2 + $len;
    }
    return join '', @out;
}

sub sign {
    my ($how, $input) = @_;
    my $in = "$Dir/signing-input";
    write_file($in, $input);
    my %pem = (rs => 'rsa-1', rs_other => 'rsa-other', es => 'ec-1',
               es_other => 'ec-other', rs_2 => 'rsa-2');
    if ($how =~ /^rs/) {
        return run('openssl', 'dgst', '-sha256', '-sign',
                   $Pem{ $pem{$how} }, '-binary', $in);
    }
    if ($how =~ /^es/) {
        return der_to_raw(run('openssl', 'dgst', '-sha256', '-sign',
                              $Pem{ $pem{$how} }, '-binary', $in));
    }
    my $key = $how eq 'hs' ? $Hmac{'hs-1'}
            : $how eq 'hs_other' ? $Hmac{'hs-other'}
            : $how eq 'hs_pem' ? public_pem('rsa-1')
            : die "unknown signing \"$how\"\n";
    return run('openssl', 'dgst', '-sha256', '-mac', 'HMAC', '-macopt',
               'hexkey:' . unpack('H*', $key), '-binary', $in);
}

sub public_pem {
    my ($kid) = @_;
    return run('openssl', 'pkey', '-in', $Pem{$kid}, '-pubout');
}

# token(claim => value, ..., -header => {...}, -sign => how, -payload =>
# raw text, -exp_in => seconds, -tamper => 1)
#
# Claims default to a valid access token of user "user-42" (roles user
# and support, session sess-7, scope "read write", 15 minutes); a claim
# given as undef is left out.  -header adds to (or, undef, removes from)
# {alg, kid, typ} of -sign's key.  -sign: rs (default), es, hs, rs_other,
# es_other, hs_other (other keys with the same kid), rs_2, hs_pem (HS256
# keyed with rsa-1's public PEM), none (empty signature), zero_es
# (r = s = 0).  -tamper flips a payload claim after signing.
sub token {
    my %a = @_;
    my $how = delete $a{-sign} // 'rs';
    my $extra = delete $a{-header} // {};
    my $raw = delete $a{-payload};
    my $tamper = delete $a{-tamper};
    my $now = time;
    my %claims = (iss => $ISS, aud => $AUD, sub => 'user-42',
                  roles => ['user', 'support'], sid => 'sess-7',
                  jti => 'jti-' . int(rand(1e9)), scope => 'read write',
                  iat => int($now) - 5, exp => int($now) + 900);
    for my $k (keys %a) {
        $claims{$k} = $a{$k};
        delete $claims{$k} unless defined $a{$k};
    }
    my %alg = (rs => ['RS256', 'rsa-1'], rs_other => ['RS256', 'rsa-1'],
               rs_2 => ['RS256', 'rsa-2'],
               es => ['ES256', 'ec-1'], es_other => ['ES256', 'ec-1'],
               zero_es => ['ES256', 'ec-1'],
               hs => ['HS256', 'hs-1'], hs_other => ['HS256', 'hs-1'],
               hs_pem => ['HS256', 'rsa-1'], none => ['none', 'rsa-1']);
    my $a = $alg{$how} or die "unknown signing \"$how\"\n";
    my %h = (alg => $a->[0], kid => $a->[1], typ => 'at+jwt');
    for my $k (keys %$extra) {
        $h{$k} = $extra->{$k};
        delete $h{$k} unless defined $h{$k};
    }
    my $input = b64url($Json->encode(\%h)) . '.'
              . b64url($raw // $Json->encode(\%claims));
    my $sig = $how eq 'none' ? ''
            : $how eq 'zero_es' ? "\0" x 64
            : sign($how, $input);
    if ($tamper) {
        $claims{sub} = 'admin-1';
        $claims{roles} = ['admin'];
        $input = b64url($Json->encode(\%h)) . '.'
               . b64url($Json->encode(\%claims));
    }
    return "$input." . b64url($sig);
}

sub bearer { 'Authorization: Bearer ' . token(@_) }

# The http{} lines of every JWT test: keys, issuer, audience, the
# identity key; and proxy_set_header X-Request-Id as conf/proxy.conf.
sub jwt_http {
    return <<"CONF";
    kordon_jwt_keys      $Dir/jwks.json;
    kordon_jwt_issuer    $ISS;
    kordon_jwt_audience  $AUD;
    kordon_identity_key  $Dir/edge.key;
    proxy_set_header     X-Request-Id \$request_id;
CONF
}

# A block preprocessor: jwt_http() goes before the block's http_config
# (unless the block says --- own_http), the default config (one location
# with "kordon_auth jwt" proxying to the echo backend, unless
# $defaults{config}) when the block has none, and every block must log
# no [alert], [crit] or (unless --- error_ok) [error].  A more_headers
# that evaluates to a code reference is called as the block starts, for
# tokens whose times must be counted from then (blocks are evaluated all
# at once, before the first one runs).
sub jwt_preprocessor {
    my %defaults = @_;
    my $config = $defaults{config} // <<'CONF';
    location /t {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
CONF
    my $http = $defaults{http} // '';
    return sub {
        my $block = shift;
        $block->set_value(http_config => jwt_http() . $http
                                         . ($block->http_config // ''))
            unless defined $block->own_http;
        $block->set_value(config => $config) unless defined $block->config;
        $block->set_value(more_headers => $block->more_headers->())
            if ref $block->more_headers eq 'CODE';
        my @never = ('[alert]', '[crit]');
        push @never, '[error]' unless defined $block->error_ok;
        my $n = $block->no_error_log;
        $block->set_value(no_error_log => ref $n ? [@$n, @never]
                          : join("\n", grep { defined } $n, @never));
    };
}

# Raw requests "$line" (say "GET /t"), one per Authorization value; undef
# sends none.  For blocks whose requests differ only in that header.
sub auth_requests {
    my ($line, @auth) = @_;
    return [ map { "$line HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                   . (defined $_ ? "Authorization: $_\r\n" : '') . "\r\n" }
             @auth ];
}

# The kit's test service (make fixtures), keyed with edge.key, started
# once per test file; $TEST_NGINX_KITD_PORT is its port.  It runs without
# a database: /whoami needs none.
sub kitd_start {
    return $ENV{TEST_NGINX_KITD_PORT} if $KitdPid;
    my $bin = kitd_binary();
    die "no kitd fixture at \"$bin\": run make fixtures\n" unless -x $bin;
    my $port = Test::Kordon::free_port();
    my $log = "$Dir/kitd.log";
    defined($KitdPid = fork) or die "fork: $!";
    if ($KitdPid == 0) {
        $ENV{KORDON_LISTEN} = "127.0.0.1:$port";
        $ENV{KORDON_EDGE_SECRET_FILE} = "$Dir/edge.key";
        $ENV{KORDON_DATABASE_URL} = 'host=127.0.0.1 port=1 connect_timeout=1';
        $ENV{KAFKA_BOOTSTRAP} = '127.0.0.1:1';
        $ENV{ASAN_OPTIONS} = 'detect_leaks=0';
        delete $ENV{LD_PRELOAD};
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        exec $bin or POSIX::_exit(127);
    }
    my $deadline = time + 10;
    while (time < $deadline) {
        if (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Proto => 'tcp', Timeout => 1)) {
            return $ENV{TEST_NGINX_KITD_PORT} = $port;
        }
        die "kitd exited:\n" . slurp($log)
            if waitpid($KitdPid, POSIX::WNOHANG()) == $KitdPid;
        sleep 0.05;
    }
    die "kitd did not listen on $port in 10 s:\n" . slurp($log);
}

# The fixture of the build whose modules are tested.
sub kitd_binary {
    return $ENV{KORDON_KITD_BINARY} if $ENV{KORDON_KITD_BINARY};
    my $top = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../..');
    my $mods = $ENV{KORDON_NGINX_MODULES} || "$top/build/nginx/modules";
    $mods = "$top/$mods" unless $mods =~ m{^/};
    (my $build = $mods) =~ s{/nginx/modules/?$}{};
    return "$build/t/fixture-kitd";
}

sub slurp {
    open my $fh, '<', shift or return '';
    local $/;
    return <$fh> // '';
}

sub setup {
    rsa_key('rsa-1');
    rsa_key('rsa-other');
    rsa_key('rsa-2');
    ec_key('ec-1');
    ec_key('ec-other');
    hmac_key('hs-1');
    hmac_key('hs-other');

    # "someone else's" keys sign under the kids of the real ones
    $Jwk{'rsa-2'}{kid} = 'rsa-2';

    jwks_write('jwks', 'rsa-1', 'ec-1', 'hs-1');
    jwks_write('rotating', 'rsa-1', 'ec-1', 'hs-1');
    write_file("$Dir/edge.key", run('openssl', 'rand', '-hex', '32'));
    write_file("$Dir/other.key", run('openssl', 'rand', '-hex', '32'));

    $ENV{TEST_NGINX_JWT_DIR} = $Dir;
    $ENV{TEST_NGINX_JWKS} = "$Dir/jwks.json";
    $ENV{TEST_NGINX_IDENTITY_KEY} = "$Dir/edge.key";
    $ENV{TEST_NGINX_OTHER_KEY} = "$Dir/other.key";
}

require Cwd;
require File::Basename;
setup();

END {
    if ($KitdPid && $$ == $Parent) {
        kill 'TERM', $KitdPid;
        waitpid $KitdPid, 0;
    }
}

1;
