package Kordon::Redis;

# Kordon::Redis -- the Redis fixtures of the edge's Redis client tests
# (t/020-*.t), so that a test block reads as a config, a request, a step
# done to Redis and an answer.
#
# Each redis-server runs from a temporary directory, on a free port of
# 127.0.0.1 (Test::Kordon's free_port(), which avoids the stacks' ports),
# with no persistence; it is stopped (and woken first if it was paused)
# when the test ends, whatever happens.  So are the fake servers.
#
#   redis_server(%opt)        starts one: password => 'secret' for
#                             requirepass; returns an object with
#                             ->port ->stop ->start ->restart ->pause
#                             ->resume ->cmd(@args) (a reply as text)
#   black_hole()              the port of a server that accepts and never
#                             answers a byte (a network that ate Redis)
#   unused_port()             a port with nothing listening
#   big_reply($bytes)         the port of a fake Redis that answers the
#                             second PING of each connection with a bulk
#                             string of $bytes and every other with PONG
#   burst($path, $n)          $n GETs at once, each on its own connection;
#                             returns { status => count }
#   abandon($path, $after)    sends a GET, closes the connection $after
#                             seconds later without reading the answer
#   poll_ok($path, $seconds)  GETs until one answers 200; dies if none did
#   quit_during($path)        sends a GET, stops nginx gracefully (SIGQUIT)
#                             while it is in flight, waits for nginx to
#                             exit; returns the response's status line
#
# redis_setup() starts the usual set and exports it to the blocks:
# TEST_NGINX_REDIS_PORT (no password), TEST_NGINX_REDIS_AUTH_PORT (with
# requirepass), TEST_NGINX_REDIS_PASSWORD_FILE and
# TEST_NGINX_REDIS_WRONG_PASSWORD_FILE (the right and a wrong password),
# TEST_NGINX_REDIS_PASSWORD_TEXT (the right one, to check it is never
# logged), TEST_NGINX_BLACK_HOLE_PORT, TEST_NGINX_UNUSED_PORT,
# TEST_NGINX_BIG_REPLY_PORT (1 MiB).  redis() and redis_auth() return the
# two servers.

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::Kordon ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(redis_setup redis redis_auth redis_server black_hole
    unused_port big_reply burst abandon poll_ok quit_during);

my $RedisServer = $ENV{KORDON_REDIS_SERVER} || 'redis-server';
my $Timeout = 5;
my $Parent = $$;
my (@Servers, @Pids, $Main, $Auth);

sub free_port { Test::Kordon::free_port(@_) }

sub redis_setup {
    my $dir = tempdir('kordon-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $password = 'k0rd0n-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 16;

    $Main = redis_server();
    $Auth = redis_server(password => $password);

    write_file("$dir/redis.password", "$password\n");
    write_file("$dir/wrong.password", "not-$password\n");

    $ENV{TEST_NGINX_REDIS_PORT} = $Main->port;
    $ENV{TEST_NGINX_REDIS_AUTH_PORT} = $Auth->port;
    $ENV{TEST_NGINX_REDIS_PASSWORD_FILE} = "$dir/redis.password";
    $ENV{TEST_NGINX_REDIS_WRONG_PASSWORD_FILE} = "$dir/wrong.password";
    $ENV{TEST_NGINX_REDIS_PASSWORD_TEXT} = $password;
    $ENV{TEST_NGINX_BLACK_HOLE_PORT} = black_hole();
    $ENV{TEST_NGINX_UNUSED_PORT} = unused_port();
    $ENV{TEST_NGINX_BIG_REPLY_PORT} = big_reply(1 << 20);
}

sub redis { $Main }
sub redis_auth { $Auth }

sub redis_server {
    my %opt = @_;
    my $self = bless {
        dir => tempdir('kordon-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        port => free_port(),
        password => $opt{password},
    }, __PACKAGE__;
    push @Servers, $self;
    $self->start;
    return $self;
}

sub port { $_[0]{port} }

sub start {
    my $self = shift;
    die "redis on port $self->{port} runs already\n" if $self->{pid};
    my @args = ('--port', $self->{port}, '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                '--dir', $self->{dir}, '--logfile', "$self->{dir}/redis.log",
                '--databases', '16');
    push @args, '--requirepass', $self->{password} if $self->{password};
    defined(my $pid = fork) or die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        exec $RedisServer, @args or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $deadline = time + $Timeout;
    while (time < $deadline) {
        return $self if eval { $self->cmd('PING') =~ /^PONG$/ };
        die "redis-server exited, see $self->{dir}/redis.log\n"
            if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.02;
    }
    die "redis-server did not answer on port $self->{port}\n";
}

sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return;
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

sub restart { my $self = shift; $self->stop; $self->start }

sub pause { kill 'STOP', $_[0]{pid} or die "cannot pause redis: $!\n" }

sub resume { kill 'CONT', $_[0]{pid} or die "cannot resume redis: $!\n" }

# One command on a connection of its own; the reply as text (an error
# dies, an array is joined with newlines).
sub cmd {
    my ($self, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Proto => 'tcp', Timeout => $Timeout)
        or die "cannot connect to redis: $!\n";
    my $req = '';
    unshift @args, 'AUTH', $self->{password} if $self->{password};
    # AUTH, then the command: read the AUTH answer first
    my @cmds = $self->{password} ? ([@args[0, 1]], [@args[2 .. $#args]])
                                 : ([@args]);
    my $reply;
    for my $c (@cmds) {
        $req = '*' . @$c . "\r\n"
               . join('', map { '$' . length($_) . "\r\n$_\r\n" } @$c);
        print $s $req;
        $reply = read_reply($s);
    }
    close $s;
    return $reply;
}

sub read_reply {
    my $s = shift;
    local $/ = "\r\n";
    my $line = <$s> // die "redis closed the connection\n";
    chomp $line;
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $type eq '+' || $type eq ':';
    die "redis: $rest\n" if $type eq '-';
    if ($type eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        read($s, $buf, $rest + 2) == $rest + 2 or die "short reply\n";
        return substr($buf, 0, $rest);
    }
    if ($type eq '*') {
        return join "\n", map { read_reply($s) // '' } 1 .. $rest;
    }
    die "redis: unexpected reply \"$line\"\n";
}

sub listener {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => free_port(), Listen => 128,
                                  ReuseAddr => 1, Proto => 'tcp')
        or die "cannot listen: $!\n";
    return $l;
}

# Runs $serve->($l) in a child process; returns the listener's port.
sub serve {
    my ($l, $serve) = @_;
    defined(my $pid = fork) or die "fork: $!\n";
    if ($pid) {
        push @Pids, $pid;
        my $port = $l->sockport;
        close $l;
        return $port;
    }
    $serve->($l);
    POSIX::_exit(0);
}

# Accepts every connection and reads whatever comes, never writing.
sub black_hole {
    return serve(listener(), sub {
        my $l = shift;
        my $sel = IO::Select->new($l);
        while (1) {
            for my $s ($sel->can_read) {
                if ($s == $l) {
                    my $c = $l->accept or next;
                    $sel->add($c);
                } elsif (!sysread($s, my $buf, 65536)) {
                    $sel->remove($s);
                    close $s;
                }
            }
        }
    });
}

# Answers PINGs, one connection at a time: the second with a bulk string
# of $bytes, written at once, so that it lies in the socket in one piece.
sub big_reply {
    my $bytes = shift;
    return serve(listener(), sub {
        my $l = shift;
        while (my $c = $l->accept) {
            my ($buf, $n) = ('', 0);
            while (sysread($c, $buf, 65536, length $buf)) {
                while ($buf =~ s/^\*1\r\n\$4\r\nPING\r\n//i) {
                    $n++;
                    my $reply = $n == 2
                        ? "\$$bytes\r\n" . ('x' x $bytes) . "\r\n"
                        : "+PONG\r\n";
                    print $c $reply;
                }
            }
            close $c;
        }
    });
}

sub unused_port {
    my $port = free_port();
    # nothing listens on it now; a test never binds it later
    return $port;
}

sub request_text {
    my $path = shift;
    return "GET $path HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\n\r\n";
}

sub connect_nginx {
    my $port = Test::Kordon::server_port();
    return IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                 Proto => 'tcp', Timeout => $Timeout)
        || die "cannot connect to nginx on port $port: $!\n";
}

sub burst {
    my ($path, $n) = @_;
    my (%status, %buf);
    my @socks = map { connect_nginx() } 1 .. $n;
    syswrite($_, request_text($path)) for @socks;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 2 * $Timeout;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            my $got = sysread($s, $buf{$s}, 65536, length($buf{$s} // ''));
            next if $got;
            my ($code) = ($buf{$s} // '') =~ m{^HTTP/1\.\d (\d{3})};
            $status{$code // 'none'}++;
            $sel->remove($s);
            close $s;
        }
    }
    $status{timeout} += $sel->count if $sel->count;
    return \%status;
}

sub abandon {
    my ($path, $after) = @_;
    my $s = connect_nginx();
    syswrite($s, request_text($path));
    sleep $after;
    close $s;
}

sub poll_ok {
    my ($path, $seconds) = @_;
    my $deadline = time + $seconds;
    my $last = '';
    while (time < $deadline) {
        my $s = connect_nginx();
        syswrite($s, request_text($path));
        my $res = '';
        while (sysread($s, $res, 65536, length $res)) {}
        close $s;
        return 1 if $res =~ m{^HTTP/1\.\d 200 };
        ($last) = $res =~ m{^(HTTP/1\.\d \d{3})};
        sleep 0.05;
    }
    die "no 200 from $path in ${seconds}s, last \"" . ($last // '') . "\"\n";
}

sub quit_during {
    my $path = shift;
    my $pidfile = Test::Kordon::servroot() . '/logs/nginx.pid';
    open my $fh, '<', $pidfile or die "no nginx pid file: $!\n";
    my ($pid) = (<$fh> // '') =~ /(\d+)/ or die "no pid in $pidfile\n";
    close $fh;
    my $s = connect_nginx();
    syswrite($s, request_text($path));
    sleep 0.1;
    kill 'QUIT', $pid or die "cannot signal nginx: $!\n";
    my $res = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read($Timeout) && sysread($s, $res, 65536, length $res)) {}
    close $s;
    my $deadline = time + $Timeout;
    while (kill(0, $pid) && time < $deadline) {
        # a daemon's zombie counts as gone
        last if (read_text("/proc/$pid/stat") // '') =~ /^\d+ \(.*\) Z/s;
        sleep 0.02;
    }
    my ($line) = $res =~ m{^(HTTP/1\.\d \d{3})};
    return $line // 'no response';
}

sub read_text {
    my $path = shift;
    open my $fh, '<', $path or return undef;
    local $/;
    return <$fh>;
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "cannot write \"$path\": $!\n";
    print $fh $text;
    close $fh or die "cannot write \"$path\": $!\n";
}

END {
    local $?;
    if ($$ == $Parent) {
        $_->stop for @Servers;
        for my $pid (@Pids) {
            kill 'TERM', $pid;
            waitpid $pid, 0;
        }
    }
}

1;
