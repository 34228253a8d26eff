package Kordon::OIDC;

# Kordon::OIDC -- the test OpenID Connect provider (build/t/fixture-oidc,
# t/fixtures/oidc/oidc.c) for end-to-end tests of social login.
#
#   my $idp = oidc_start(port => 0);        # 0: any free loopback port
#   # users runs with KORDON_OAUTH_<NAME>_ISSUER = $idp->{issuer},
#   # _CLIENT_ID kordon-test, _CLIENT_SECRET kordon-test-secret (defaults)
#   my $r = edge(GET => '/v1/auth/oauth/local/start');     # 302 + cookie
#   my $cb = oidc_authorize($r->{headers}{location},
#                           sub => 'u-1', email => 'jane@example.com');
#   # $cb->{location} is users' callback URL with code and state
#   oidc_control($idp, sig => 'other');     # next id_token badly signed
#   oidc_stop($idp);
#
# Switches (oidc_control or oidc_start(switches => {...})): sig good|other|
# none|hs256, nonce|aud|iss good|wrong, exp good|past, rotate 1, reset 1.

use strict;
use warnings;

use Exporter 'import';
use File::Spec;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep);

our @EXPORT = qw(oidc_start oidc_stop oidc_control oidc_authorize);

my $START_TIMEOUT_S = 10;

sub _binary {
    my $top = File::Spec->rel2abs(__FILE__);
    $top =~ s{/t/lib/Kordon/OIDC\.pm$}{};
    my $build = $ENV{KORDON_BUILD} // 'build';
    $build = "$top/$build" unless $build =~ m{^/};
    return "$build/t/fixture-oidc";
}

sub _escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# oidc_start(port => N, client_id => ..., client_secret => ...,
#            switches => {sig => 'other', ...}) -> {pid, issuer}
# Dies when the provider does not answer within $START_TIMEOUT_S.
sub oidc_start {
    my (%opt) = @_;
    my @args = ('--port', $opt{port} // 0);
    push @args, '--client-id', $opt{client_id} if defined $opt{client_id};
    push @args, '--client-secret', $opt{client_secret}
        if defined $opt{client_secret};
    my $sw = $opt{switches} || {};
    push @args, "--$_", $sw->{$_} for sort keys %$sw;

    my $pid = open(my $out, '-|') // die "fixture-oidc: fork: $!";
    if ($pid == 0) {
        exec(_binary(), @args) or die "fixture-oidc: exec: $!";
    }
    my $issuer;
    local $SIG{ALRM} = sub { die "fixture-oidc: no issuer line\n" };
    alarm $START_TIMEOUT_S;
    $issuer = <$out>;
    alarm 0;
    die "fixture-oidc: did not start\n" unless defined $issuer;
    chomp $issuer;
    return { pid => $pid, issuer => $issuer, out => $out };
}

sub oidc_stop {
    my ($idp) = @_;
    return unless $idp && $idp->{pid};
    kill 'TERM', $idp->{pid};
    close $idp->{out};          # waits for the process
    $idp->{pid} = 0;
}

# oidc_control($idp, name => value, ...) -> the switches and counters
sub oidc_control {
    my ($idp, %sw) = @_;
    my $q = join '&',
        map { _escape($_) . '=' . _escape($sw{$_}) } sort keys %sw;
    my $r = HTTP::Tiny->new(timeout => 10)
        ->get("$idp->{issuer}/_control?$q");
    die "fixture-oidc: /_control answered $r->{status}\n"
        unless $r->{success};
    return JSON::PP->new->decode($r->{content});
}

# oidc_authorize(AUTHORIZATION_URL, sub => ..., email => ...,
#                email_verified => 0|1) -> {status, location, code, state}
# What a browser does at the provider: the person logs in and is sent back.
sub oidc_authorize {
    my ($url, %user) = @_;
    my %q;
    $q{test_sub} = $user{sub} if defined $user{sub};
    $q{test_email} = $user{email} if defined $user{email};
    $q{test_email_verified} = $user{email_verified} ? 'true' : 'false'
        if exists $user{email_verified};
    $url .= join '', map { '&' . $_ . '=' . _escape($q{$_}) } sort keys %q;
    my $r = HTTP::Tiny->new(timeout => 10, max_redirect => 0)->get($url);
    my $loc = $r->{headers}{location} // '';
    my %back;
    if ($loc =~ /\?(.*)$/) {
        for my $kv (split /&/, $1) {
            my ($k, $v) = split /=/, $kv, 2;
            $v //= '';
            $v =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
            $back{$k} = $v;
        }
    }
    return { status => $r->{status}, location => $loc,
             code => $back{code}, state => $back{state} };
}

1;
