# The three-edge accuracy test: three nginx instances share one Redis in
# mode=cluster and take a flood of requests at once; the requests they
# admit together stay within 10% of what the limit allows (burst + rate
# x time).  The same flood against mode=local (each edge its own zone,
# as Kong's local policy) shows what a per-edge limit lets through.
# mode=hybrid is measured too, with share=1 and share=3 (its accuracy
# trade-off, see the module's README).  The figures are printed (diag).

use strict;
use warnings;

use Test::More;
use Test::Kordon ();
use Kordon::Redis;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use POSIX ();

my $Top = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/..');
my $Nginx = $ENV{KORDON_NGINX_BINARY} || '/usr/sbin/nginx';
my $Modules = $ENV{KORDON_NGINX_MODULES} || "$Top/build/nginx/modules";
my ($Rate, $Burst, $Seconds, $Clients) = (200, 20, 2, 2);
my @Edges;

$Modules = "$Top/$Modules" unless $Modules =~ m{^/};

# a sanitizer build of the modules needs its runtime preloaded
if (-e "$Modules/.asan") {
    chomp(my $lib = `gcc -print-file-name=libasan.so`);
    $ENV{LD_PRELOAD} = $lib;
    $ENV{ASAN_OPTIONS} = 'detect_leaks=0:abort_on_error=1:detect_odr_violation=0';
}

my $redis = redis_server();

sub start_edge {
    my ($mode, $extra) = @_;
    $extra //= '';
    my $dir = tempdir('kordon-edge-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port = Test::Kordon::free_port(map { $_->{port} } @Edges);
    mkdir "$dir/$_" for qw(conf logs html);
    open my $fh, '>', "$dir/html/index.html" or die;
    print $fh "ok\n";
    close $fh;
    my $so = join '', map { "load_module $Modules/ngx_http_kordon$_\_module.so;\n" }
                      '', '_redis', '_limit';
    my $user = $> == 0 ? "user root;\n" : '';
    open $fh, '>', "$dir/conf/nginx.conf" or die;
    print $fh <<"CONF";
$so$user
daemon on;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    kordon_redis main 127.0.0.1:${\ $redis->port } timeout=500ms;
    kordon_limit_zone name=edge rate=$Rate/s burst=$Burst key=all
                      mode=$mode redis=main $extra;
    server {
        listen 127.0.0.1:$port;
        root html;
        location / { kordon_limit edge; }
    }
}
CONF
    close $fh;
    system("$Nginx -p $dir/ -c conf/nginx.conf -e logs/error.log") == 0
        or die "nginx did not start\n";
    for (1 .. 100) { last if -s "$dir/logs/nginx.pid"; sleep 0.05 }
    push @Edges, { dir => $dir, port => $port };
}

sub stop_edges {
    for my $e (@Edges) {
        open my $fh, '<', "$e->{dir}/logs/nginx.pid" or next;
        my ($pid) = <$fh> =~ /(\d+)/;
        kill 'TERM', $pid;
        for (1 .. 100) { last unless kill 0, $pid; sleep 0.05 }
        my $log = do { local (@ARGV, $/) = "$e->{dir}/logs/error.log"; <> };
        unlike($log, qr/\[alert\]|exited on signal/, "edge $e->{port}: no alert");
    }
    @Edges = ();
}

# One client: a keep-alive connection, requests back to back until $end;
# prints "admitted refused" to its pipe.
sub client {
    my ($port, $start, $end, $w) = @_;
    my ($ok, $no) = (0, 0);
    sleep($start - time) if $start > time;
    my $s;
    while (time < $end) {
        $s ||= IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                     Proto => 'tcp') or die "connect: $!";
        print $s "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
        local $/ = "\r\n\r\n";
        my $head = <$s> // do { undef $s; next };
        my ($code) = $head =~ m{^HTTP/1\.1 (\d+)};
        my ($len) = $head =~ /Content-Length: (\d+)/i;
        read($s, my $body, $len // 0);
        $code == 200 ? $ok++ : $code == 429 ? $no++ : die "status $code\n";
        undef $s if $head =~ /Connection: close/i;
    }
    print $w "$ok $no\n";
    close $w;
}

sub flood {
    my ($start, $end) = (time + 0.5, time + 0.5 + $Seconds);
    my @pipes;
    for my $e (@Edges) {
        for (1 .. $Clients) {
            pipe(my $r, my $w) or die;
            defined(my $pid = fork) or die;
            if (!$pid) { close $r; client($e->{port}, $start, $end, $w); POSIX::_exit(0) }
            close $w;
            push @pipes, [$pid, $r];
        }
    }
    my ($ok, $no) = (0, 0);
    for my $p (@pipes) {
        my $line = readline($p->[1]) // '0 0';
        my ($a, $b) = split ' ', $line;
        $ok += $a;
        $no += $b;
        waitpid $p->[0], 0;
    }
    return ($ok, $no);
}

my $limit = $Burst + $Rate * $Seconds;

start_edge('cluster') for 1 .. 3;
my ($ok, $no) = flood();
stop_edges();
my $off = ($ok - $limit) / $limit;
diag(sprintf "cluster, 3 edges: %d admitted of %d sent, limit %d: %+.1f%%",
             $ok, $ok + $no, $limit, 100 * $off);
ok($no > $ok, "the flood was larger than the limit ($no refused)");
ok(abs($off) <= 0.10, "cluster: admitted within 10% of the limit");

$redis->cmd('FLUSHALL');

start_edge('local') for 1 .. 3;
my ($lok, $lno) = flood();
stop_edges();
diag(sprintf "local, 3 edges: %d admitted of %d sent, limit %d: %.2fx",
             $lok, $lok + $lno, $limit, $lok / $limit);
ok($lok > 2 * $limit, "local: each edge admits its own limit");

for my $share (1, 3) {
    $redis->cmd('FLUSHALL');
    start_edge('hybrid', "sync=50ms share=$share") for 1 .. 3;
    my ($hok, $hno) = flood();
    stop_edges();
    diag(sprintf "hybrid share=%d sync=50ms, 3 edges: %d admitted of %d "
                 . "sent, limit %d: %+.1f%%", $share, $hok, $hok + $hno,
                 $limit, 100 * ($hok - $limit) / $limit);
    ok($hok < $lok, "hybrid share=$share admits less than local");
}

done_testing();

END { stop_edges() if @Edges }
