package Kordon::Auth;

# Kordon::Auth -- fixtures of the edge's API key and revocation tests
# (t/014-*.t, t/015-*.t), on top of Kordon::Redis's private redis-server:
# a key is written to Redis as users' scripts/apikey would write it, a
# revocation is XADDed as users does, and a test block reads as a
# config, a request, a step done to Redis and an answer.
#
#   apikey(%fields)          creates a key in redis(): returns its header
#                            value "kdk_<id>_<secret>"; fields override
#                            owner (u-1), roles (user), scopes (read
#                            write), revoked (0); -id and -secret pick them
#   apikey_set($key, f, v)   HSET on the key's record
#   apikey_script(@args)     runs scripts/apikey @args against redis();
#                            returns its output (create: the key is in it)
#   apikeys_again()          writes every key made so far again (after a
#                            restart of the memory-only redis-server)
#   revoke(sub|sid => $id, nbf => $t)
#                            XADD kordon:revocations ... like users does
#                            (nbf defaults to now + 1: every token issued
#                            so far is cut)
#   key_requests($line, @keys)  raw requests, one per X-Api-Key value
#                            (undef: none); a [$key, $bearer] pair sends
#                            both headers
#   wait_poll()              sleeps one second: revocations must be in
#                            force within it

use strict;
use warnings;

use Cwd ();
use Exporter 'import';
use File::Basename ();
use Digest::SHA qw(sha256_hex);
use Kordon::JWT qw(b64url);
use Kordon::Redis ();
use Time::HiRes qw(sleep);

our @EXPORT = qw(apikey apikey_set apikeys_again apikey_script revoke
    key_requests wait_poll random_hex);

my %Made;

sub random_hex { join '', map { sprintf '%02x', int rand 256 } 1 .. $_[0] }

sub apikey {
    my %f = @_;
    my $id = delete $f{-id} // random_hex(8);
    my $secret = delete $f{-secret};
    unless (defined $secret) {
        # 32 random bytes: 43 base64url characters, the last canonical
        $secret = b64url(join '', map { chr int rand 256 } 1 .. 32);
    }
    my %rec = (secret_sha256 => sha256_hex($secret), owner => 'u-1',
               roles => 'user', scopes => 'read write', name => 'test',
               created_at => time, revoked => '0', %f);
    delete $rec{$_} for grep { !defined $rec{$_} } keys %rec;
    $Made{$id} = \%rec;
    Kordon::Redis::redis()->cmd('DEL', "kordon:apikey:$id");
    Kordon::Redis::redis()->cmd('HSET', "kordon:apikey:$id", %rec);
    return "kdk_${id}_$secret";
}

sub apikey_script {
    my @args = @_;
    my $script = Cwd::abs_path(File::Basename::dirname(__FILE__)
                               . '/../../../scripts/apikey');
    local $ENV{REDIS_URL} = 'redis://127.0.0.1:'
                            . Kordon::Redis::redis()->port . '/0';
    open my $fh, '-|', $script, @args or die "cannot run $script: $!\n";
    local $/;
    my $out = <$fh> // '';
    close $fh or die "scripts/apikey @args failed ($?): $out\n";
    if ($out =~ /^id:\s+([0-9a-f]{16})$/m) {
        my %rec = split /\n/,
            Kordon::Redis::redis()->cmd('HGETALL', "kordon:apikey:$1");
        $Made{$1} = \%rec;
    }
    return $out;
}

sub apikeys_again {
    Kordon::Redis::redis()->cmd('HSET', "kordon:apikey:$_", %{$Made{$_}})
        for keys %Made;
}

sub apikey_set {
    my ($key, @fv) = @_;
    my ($id) = $key =~ /^kdk_([0-9a-f]{16})_/ or die "not a key: $key\n";
    Kordon::Redis::redis()->cmd('HSET', "kordon:apikey:$id", @fv);
}

sub revoke {
    my %a = @_;
    my $nbf = delete $a{nbf} // time + 1;
    my ($kind) = keys %a;
    return Kordon::Redis::redis()->cmd('XADD', 'kordon:revocations', '*',
                                       $kind, $a{$kind}, 'nbf', $nbf);
}

sub key_requests {
    my ($line, @keys) = @_;
    return [ map {
        my ($k, $b) = ref $_ ? @$_ : ($_, undef);
        "$line HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . (defined $k ? "X-Api-Key: $k\r\n" : '')
        . (defined $b ? "Authorization: Bearer $b\r\n" : '') . "\r\n"
    } @keys ];
}

sub wait_poll { sleep 1 }

1;
