# The Redis response cache: single-flight for misses (kordon_cache_lock,
# on by default).  Concurrent GETs that miss the same key in one worker
# send ONE request upstream: the first leads, the others wait for its
# answer (kordon_cache_lock_timeout at most) and are answered from it.
# An answer that will not be stored lets them go upstream at once; a
# client that leaves, leader or waiter, leaves nothing behind.  One
# worker here (Test::Kordon), so the upstream sees exactly one request.
# The upstream is t/lib/Kordon/Origin.pm: "hits N <path>", delay= slows it.

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

redis_setup();
origin_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    $block->set_value('http_config', <<'CONF') unless $block->http_config;
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
CONF
    $block->set_value('config', <<'CONF' . ($block->config // ''));
    location = /stats { kordon_cache_stats; }
CONF
});

sub open_get {
    my ($path, $method) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1:' . Test::Kordon::server_port(),
        Proto => 'tcp', Timeout => 5) or die "connect: $!\n";
    syswrite($s, ($method // 'GET') . " $path HTTP/1.1\r\nHost: localhost\r\n"
                 . "Connection: close\r\n\r\n");
    return $s;
}

# reads every socket to its end (10 s at most); the raw responses
sub read_all {
    my @socks = @_;
    my %buf = map { ($_ => '') } @socks;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + 10;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            next if sysread($s, $buf{$s}, 65536, length $buf{$s});
            $sel->remove($s);
        }
    }
    die "no answer in 10 s\n" if $sel->count;
    return map { $buf{$_} } @socks;
}

# $n GETs of $path at once, each on its own connection: how many answers
# had each X-Cache, each body, and how long the whole took
sub herd {
    my ($path, $n) = @_;
    my $t0 = time;
    my @res = read_all(map { open_get($path) } 1 .. $n);
    my (%cache, %body);
    for (@res) {
        die "not a 200: $_\n" unless m{^HTTP/1\.1 200 };
        my ($x) = /\r\nX-Cache: (\w+)\r\n/;
        $cache{$x // 'none'}++;
        my ($b) = /\r\n\r\n(hits \d+)/;
        $body{$b // 'none'}++;
    }
    return (\%cache, \%body, time - $t0);
}

sub is_counts {
    my ($got, $want, $what) = @_;
    my $g = join ' ', map { "$_=$got->{$_}" } sort keys %$got;
    my $w = join ' ', map { "$_=$want->{$_}" } sort keys %$want;
    die "$what: $g, not $w\n" unless $g eq $w;
}

run_tests();

__DATA__

=== TEST 1: a herd of 10 on a cold key: the upstream sees one request
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my ($c, $b) = herd('/c/h?delay=0.3', 10);
       is_counts($c, { MISS => 1, HIT => 9 }, 'X-Cache');
       is_counts($b, { 'hits 1' => 10 }, 'bodies') },
 "GET /c/h?delay=0.3", "GET /stats"]
--- response_headers eval
["X-Cache: HIT", ""]
--- response_body_like eval
["^hits 1 /c/h\n", qr/"hits":10,"misses":1,.*"lock_waits":9,"lock_timeouts":0\}/]
--- no_error_log
[alert]
[error]



=== TEST 2: kordon_cache_lock off: every miss goes upstream
--- config
    location /c/ {
        kordon_cache main;
        kordon_cache_lock off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my ($c, $b) = herd('/c/off?delay=0.1', 5);
       is_counts($c, { MISS => 5 }, 'X-Cache');
       is_counts($b, { map { ("hits $_" => 1) } 1 .. 5 }, 'bodies') },
 "GET /stats"]
--- response_body_like eval
[qr/"misses":5,.*"lock_waits":0,/]



=== TEST 3: an answer that is not stored lets the waiters go upstream at once
--- config
    location /c/ {
        kordon_cache main;
        kordon_cache_lock_timeout 10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my ($c, $b, $t) = herd('/c/ns?delay=0.2&cc=no-store', 4);
       is_counts($c, { MISS => 4 }, 'X-Cache');
       is_counts($b, { map { ("hits $_" => 1) } 1 .. 4 }, 'bodies');
       die "took $t s: the waiters waited for the lock timeout\n" if $t > 5 },
 "GET /stats"]
--- response_body_like eval
[qr/"lock_waits":3,"lock_timeouts":0\}/]



=== TEST 4: a leader slower than kordon_cache_lock_timeout: the waiters go by themselves
--- config
    location /c/ {
        kordon_cache main;
        kordon_cache_lock_timeout 200ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my ($c, $b) = herd('/c/slow?delay=0.6', 3);
       is_counts($c, { MISS => 3 }, 'X-Cache');
       is_counts($b, { map { ("hits $_" => 1) } 1 .. 3 }, 'bodies') },
 "GET /stats"]
--- response_body_like eval
[qr/"lock_waits":2,"lock_timeouts":2\}/]
--- error_log
kordon cache: another request's answer did not come in time, going upstream



=== TEST 5: a waiter's client leaves; the leader and the entry are fine
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my $leader = open_get('/c/w?delay=0.5');
       sleep 0.1;
       my $waiter = open_get('/c/w?delay=0.5');
       sleep 0.1;
       close $waiter;
       my ($res) = read_all($leader);
       die "leader: $res\n" unless $res =~ /X-Cache: MISS\r\n.*hits 1 /s },
 "GET /c/w?delay=0.5", "GET /stats"]
--- response_headers eval
["X-Cache: HIT", ""]
--- response_body_like eval
["^hits 1 /c/w\n", qr/"lock_waits":1,"lock_timeouts":0\}/]
--- no_error_log
[alert]



=== TEST 6: the leader's client leaves: the waiter goes upstream, no hang
--- config
    location /c/ {
        kordon_cache main;
        kordon_cache_lock_timeout 10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my $leader = open_get('/c/l?delay=0.5');
       sleep 0.1;
       my $t0 = time;
       my $waiter = open_get('/c/l?delay=0.5');
       sleep 0.1;
       close $leader;
       my ($res) = read_all($waiter);
       die "waiter: $res\n" unless $res =~ m{^HTTP/1\.1 200 .*X-Cache: MISS\r\n}s;
       die "the waiter waited for the lock timeout\n" if time - $t0 > 5 }]
--- no_error_log
[alert]



=== TEST 7: a HEAD waits for a GET's answer; other keys never wait
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { my @s = (open_get('/c/hd?delay=0.3'));
       sleep 0.05;
       push @s, open_get('/c/hd?delay=0.3', 'HEAD'), open_get('/c/other?delay=0.3');
       my ($get, $head, $other) = read_all(@s);
       die "get: $get\n" unless $get =~ /X-Cache: MISS\r\n.*hits 1 /s;
       die "head: $head\n" unless $head =~ /X-Cache: HIT\r\n/ && $head !~ /hits/;
       die "other: $other\n" unless $other =~ /X-Cache: MISS\r\n.*hits 1 /s },
 "GET /stats"]
--- response_body_like eval
[qr/"lock_waits":1,/]
