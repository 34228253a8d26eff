package Kordon::Origin;

# Kordon::Origin -- an upstream for the edge's cache tests (t/06N-*.t)
# that counts its hits, so that a block shows whether an answer came from
# the upstream or from the cache: each answer's body starts with
# "hits N <path>\n", N counting the requests for that path (the query
# left out) since the origin started.
#
# The query steers the answer (values URL-decoded):
#
#   cc=<value>       Cache-Control: <value>
#   tags=<a b>       X-Kordon-Cache-Tags: <a b>
#   status=<nnn>     the status (default 200)
#   cookie=1         Set-Cookie: s=1
#   size=<n>         n bytes of "x" after the first line
#   h=<Name: value>  one more header
#   short=1          Content-Length says 100 bytes more than it sends
#   delay=<s>        answers after s seconds (fractions allowed), so
#                    that requests overlap at the edge (t/066); the
#                    origin serves one connection at a time
#
# Every answer also carries X-Origin-Hits: N.  origin_setup() starts it
# (a forked process, stopped when the test ends) and exports its port as
# TEST_NGINX_ORIGIN_PORT.

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use POSIX ();
use Test::Kordon ();
use Time::HiRes ();

our @EXPORT = qw(origin_setup);

my $Parent = $$;
my $Pid;

sub decode {
    my $s = shift // '';
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

sub origin_setup {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => Test::Kordon::free_port(),
                                  Listen => 64, ReuseAddr => 1,
                                  Proto => 'tcp')
        or die "cannot listen for the origin: $!\n";
    $ENV{TEST_NGINX_ORIGIN_PORT} = $l->sockport;
    defined($Pid = fork) or die "fork: $!\n";
    if ($Pid) {
        close $l;
        return;
    }
    my %hits;
    while (my $c = $l->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/ && sysread($c, $req, 8192, length $req)) {}
        my ($method, $path, $query) = $req =~ m{^(\S+) ([^?\s]*)\??(\S*)};
        unless ($method) {
            close $c;
            next;
        }
        my %q = map { my ($k, $v) = split /=/, $_, 2; ($k => decode($v)) }
                grep { length } split /&/, $query;
        my $n = ++$hits{$path};
        Time::HiRes::sleep($q{delay}) if $q{delay};
        my $status = $q{status} // 200;
        my $body = $status == 204 ? ''
                   : "hits $n $path\n" . ('x' x ($q{size} // 0));
        my @h = ("Content-Type: text/plain", "X-Origin-Hits: $n");
        push @h, "Cache-Control: $q{cc}" if defined $q{cc};
        push @h, "X-Kordon-Cache-Tags: $q{tags}" if defined $q{tags};
        push @h, "Set-Cookie: s=1; Path=/" if $q{cookie};
        push @h, $q{h} if defined $q{h};
        push @h, "Content-Length: " . (length($body) + ($q{short} ? 100 : 0));
        push @h, "Connection: close";
        syswrite($c, "HTTP/1.1 $status Origin\r\n" . join('', map { "$_\r\n" } @h)
                     . "\r\n" . ($method eq 'HEAD' ? '' : $body));
        close $c;
    }
    POSIX::_exit(0);
}

END {
    local $?;
    if ($Pid && $$ == $Parent) {
        kill 'TERM', $Pid;
        waitpid $Pid, 0;
    }
}

1;
