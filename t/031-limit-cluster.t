# Rate limits in Redis (mode=cluster): the same GCRA decisions as the
# local zones, the script sent by SHA and again after Redis forgot it,
# several cluster limits in one script call, and Redis killed, paused or
# absent mid-test: fail=open lets requests through with
# $kordon_limit_status error:<zone>, fail=closed answers 503, both at
# once or within the timeout (X-Time), never a hang or a crashed worker,
# and the failures are logged once a second at most.

use Test::Kordon;
use Kordon::Redis;
use Digest::SHA ();
use POSIX ();
use Time::HiRes qw(sleep);

redis_setup();

# every block starts with an empty Redis
add_block_preprocessor(sub { redis()->cmd('FLUSHALL') if redis()->{pid} });

run_tests();

__DATA__

=== TEST 1: a burst of 3 in Redis, then 429 with Retry-After
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=6/m burst=3 key=$remote_addr
                      mode=cluster redis=main;
--- config
    location / { kordon_limit api; add_header X-Limit $kordon_limit_status always; }
--- request eval
["GET /index.html", "GET /index.html", "GET /index.html", "GET /index.html"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"api\";q=3;w=30\nRateLimit: \"api\";r=2;t=10\nX-Limit: ok",
 "RateLimit: \"api\";r=1;t=20",
 "RateLimit: \"api\";r=0;t=30",
 "RateLimit: \"api\";r=0;t=30\nRetry-After: 10\nX-Limit: limited:api"]
--- problem eval
[undef, undef, undef, "429"]
--- no_error_log
[error]
[warn]



=== TEST 2: the key lives in Redis, with the bucket's time to live
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=6/m burst=3 key=$remote_addr
                      mode=cluster redis=main;
--- config
    location / { kordon_limit api; }
--- request eval
["GET /index.html",
 sub {
     my $ttl = redis()->cmd('PTTL', 'kordon:limit:api:127.0.0.1');
     die "pttl $ttl\n" unless $ttl > 9000 && $ttl <= 10001;
 },
 "GET /index.html"]
--- error_code eval
[200, 200]



=== TEST 3: Redis forgot the script (SCRIPT FLUSH): EVAL once, then on
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=6/m burst=2 key=$remote_addr
                      mode=cluster redis=main;
--- config
    location / { kordon_limit api; }
--- request eval
["GET /index.html", sub { redis()->cmd('SCRIPT', 'FLUSH') },
 "GET /index.html", "GET /index.html"]
--- error_code eval
[200, 200, 429]
--- error_log eval
[qr/redis "main" had no script [0-9a-f]{40}, sending it/]
--- no_error_log
[error]



=== TEST 4: two cluster limits in one call; a refusal takes nothing
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=small rate=1/m burst=1 key=$arg_user
                      mode=cluster redis=main;
    kordon_limit_zone name=big rate=3/m burst=3 key=all
                      mode=cluster redis=main;
--- config
    location / {
        kordon_limit small;
        kordon_limit big;
        add_header X-Limit $kordon_limit_status always;
    }
--- request eval
["GET /index.html?user=u1", "GET /index.html?user=u1",
 "GET /index.html?user=u2", "GET /index.html?user=u3",
 "GET /index.html?user=u4"]
--- error_code eval
[200, 429, 200, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"small\";q=1;w=60, \"big\";q=3;w=60",
 "X-Limit: limited:small\nRateLimit: \"small\";r=0;t=60, \"big\";r=2;t=20",
 "RateLimit: \"small\";r=0;t=60, \"big\";r=1;t=40",
 "", "X-Limit: limited:big"]



=== TEST 5: a local and a cluster limit on one location
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=here rate=2/m burst=2 key=$remote_addr;
    kordon_limit_zone name=there rate=1/m burst=1 key=$arg_user
                      mode=cluster redis=main;
--- config
    location / {
        kordon_limit here;
        kordon_limit there;
        add_header X-Limit $kordon_limit_status always;
    }
--- request eval
["GET /index.html?user=a", "GET /index.html?user=a",
 "GET /index.html?user=b", "GET /index.html?user=c"]
--- error_code eval
[200, 429, 200, 429]
--- response_headers eval
["", "X-Limit: limited:there", "", "X-Limit: limited:here"]



=== TEST 6: Redis killed mid-test, fail=open: admitted at once, logged
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr
                      mode=cluster redis=main fail=open;
--- config
    location / {
        kordon_limit api;
        add_header X-Limit $kordon_limit_status always;
        add_header X-Time $request_time always;
    }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /index.html", "GET /index.html", sub { redis()->stop; sleep 0.1 },
 "GET /index.html", "GET /index.html", "GET /index.html",
 sub { redis()->start; sleep 0.5 }, "GET /stats"]
--- response_body_like eval
["", "", "", "", "",
 '"mode":"cluster","admitted":4,"limited":1,"redis_errors":3,"failed_open":3,"failed_closed":0,']
--- error_code eval
[200, 429, 200, 200, 200, 200]
--- response_headers_like eval
["X-Limit: ^ok\$", "X-Limit: ^limited:api\$",
 "X-Limit: ^error:api\$\nX-Time: ^0\\.0[0-4]\\d\$\n!RateLimit\$",
 "X-Limit: ^error:api\$\nX-Time: ^0\\.0[0-4]\\d\$",
 "X-Limit: ^error:api\$\nX-Time: ^0\\.0[0-4]\\d\$"]
--- error_log eval
[qr/kordon limit "api": redis "main" failed \(down\), failing open; 0 more/]
--- no_error_log eval
[qr/failing open(?s:.*)failing open/, "[alert]"]



=== TEST 7: Redis killed mid-test, fail=closed: 503 problem at once
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=1/m burst=5 key=$remote_addr
                      mode=cluster redis=main fail=closed;
--- config
    location / {
        kordon_limit api;
        add_header X-Limit $kordon_limit_status always;
        add_header X-Time $request_time always;
    }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /index.html", sub { redis()->stop; sleep 0.1 },
 "GET /index.html", "GET /index.html",
 sub { redis()->start; poll_ok('/index.html', 5) }, "GET /index.html",
 "GET /stats"]
--- error_code eval
[200, 503, 503, 200, 200]
--- response_body_like eval
["", "", "", "", '"limited":0,"redis_errors":[2-9],"failed_open":0,"failed_closed":[2-9],']
--- problem eval
[undef, "503 the rate limit service is not available",
 "503 the rate limit service is not available", undef]
--- response_headers_like eval
["X-Limit: ^ok\$", "X-Limit: ^error:api\$\nX-Time: ^0\\.0[0-4]\\d\$\nRetry-After: ^1\$",
 "X-Time: ^0\\.0[0-4]\\d\$", "X-Limit: ^ok\$"]
--- error_log
failing closed
--- no_error_log
[alert]



=== TEST 8: Redis paused: fail=open after the zone's timeout, no hang
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr
                      mode=cluster redis=main timeout=150ms;
--- config
    location / {
        kordon_limit api;
        add_header X-Limit $kordon_limit_status always;
        add_header X-Time $request_time always;
    }
--- request eval
["GET /index.html", sub { redis()->pause },
 "GET /index.html", sub { redis()->resume }]
--- error_code eval
[200, 200]
--- response_headers_like eval
["X-Limit: ^ok\$", "X-Limit: ^error:api\$\nX-Time: ^0\\.(?:1[4-9]|2\\d)\\d\$"]
--- error_log eval
[qr/redis "main" failed \(timeout\), failing open/]
--- no_error_log
[alert]



=== TEST 9: Redis never there: a burst of 50 fails open, logged once a second
--- http_config
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr
                      mode=cluster redis=gone;
--- config
    location / { kordon_limit api; }
--- request eval
[sub {
     my $st = burst('/index.html', 50);
     die "answers: @{[ %$st ]}\n" unless ($st->{200} // 0) == 50;
     sleep 1.1;
 },
 "GET /index.html"]
--- error_log eval
[qr/failing open; 0 more such failures not logged/,
 qr/failing open; [1-9]\d* more such failures not logged/]
--- no_error_log eval
[qr/failing open(?s:.*)failing open(?s:.*)failing open(?s:.*)failing open/,
 "[alert]"]



=== TEST 10: the client leaves while Redis is paused: no crash
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=300ms;
    kordon_limit_zone name=api rate=1/m burst=5 key=$remote_addr
                      mode=cluster redis=main timeout=300ms;
--- config
    location / { kordon_limit api; }
--- request eval
[sub { redis()->pause; abandon('/index.html', 0.1); sleep 0.4;
       redis()->resume; poll_ok('/index.html', 3) },
 "GET /index.html"]
--- error_code eval
[200]
--- no_error_log
[alert]



=== TEST 11: cluster limits of one location on two Redis fail nginx -t
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_redis other 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT;
    kordon_limit_zone name=a rate=1/s burst=1 key=x mode=cluster redis=main;
    kordon_limit_zone name=b rate=1/s burst=1 key=x mode=cluster redis=other;
--- config
    location / { kordon_limit a; kordon_limit b; }
--- must_die
--- error_log
the cluster limits of one place must use one redis



=== TEST 12: 50 requests in flight when Redis dies: all answered, open
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=2s;
    kordon_limit_zone name=api rate=1/m burst=1 key=$arg_n
                      mode=cluster redis=main timeout=2s;
--- config
    location / { kordon_limit api; }
--- request eval
[sub {
     redis()->pause;
     defined(my $pid = open(my $kid, '-|')) or die "fork: $!\n";
     if (!$pid) {
         my $st = burst('/index.html', 50);
         print join(' ', map { "$_=$st->{$_}" } sort keys %$st), "\n";
         POSIX::_exit(0);
     }
     sleep 1;                            # all 50 sent (2 s timeout)
     redis()->stop;                      # in flight: the connection ends
     my $got = <$kid> // '';
     close $kid;
     redis()->start;
     die "answers: $got\n" unless $got =~ /^200=50$/;
 },
 "GET /index.html?n=1"]
--- error_code eval
[200]
--- error_log eval
[qr/failed \(down\), failing open/]
--- no_error_log
[alert]



=== TEST 13: a key over 200 bytes goes to Redis as its SHA-1
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=1/m burst=1 key=$arg_k
                      mode=cluster redis=main;
--- config
    location / { kordon_limit api; }
--- request eval
["GET /index.html?k=" . ('x' x 300), "GET /index.html?k=" . ('x' x 300),
 "GET /index.html?k=" . ('x' x 299) . 'y',
 sub {
     my $sha = Digest::SHA::sha1_hex('x' x 300);
     die "no hashed key\n"
         unless redis()->cmd('EXISTS', "kordon:limit:api:#$sha") == 1;
 }]
--- error_code eval
[200, 429, 200]



=== TEST 14: requests of one event loop iteration share one script call, each with its own exact answer
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=api rate=6/m burst=5 key=$remote_addr
                      mode=cluster redis=main;
--- config
    location /warm { return 204; }
    location / { kordon_limit api; }
--- request eval
[sub {
     # 30 keep-alive connections the worker already knows; stopped, it
     # finds all 30 requests ready in one epoll_wait() when it goes on
     my @socks = map { Kordon::Redis::connect_nginx() } 1 .. 30;
     my $req = sub { "GET $_[0] HTTP/1.1\r\nHost: localhost\r\n\r\n" };
     for my $s (@socks) {
         syswrite($s, $req->('/warm'));
         my $head = '';
         sysread($s, $head, 4096, length $head) until $head =~ /\r\n\r\n/;
     }
     my ($worker) = `pgrep -P @{[ Test::Kordon::master_pid() ]}` =~ /(\d+)/;
     redis()->cmd('CONFIG', 'RESETSTAT');
     kill 'STOP', $worker or die "stop: $!\n";
     for (1 .. 200) {                    # kill() does not wait for it
         open my $st, '<', "/proc/$worker/stat" or die "stat: $!\n";
         last if (split ' ', <$st>)[2] eq 'T';
         sleep 0.01;
     }
     syswrite($_, $req->('/index.html')) for @socks;
     kill 'CONT', $worker;
     my (%code, %left);
     for my $s (@socks) {
         my $res = '';
         sysread($s, $res, 65536, length $res) until $res =~ /\r\n\r\n/;
         my ($code) = $res =~ m{^HTTP/1\.1 (\d+)};
         $code{$code}++;
         $left{$1}++ if $code == 200 && $res =~ /RateLimit: "api";r=(\d+)/;
         close $s;
     }
     my ($calls, $stats) = (0, redis()->cmd('INFO', 'commandstats'));
     $calls += $1 while $stats =~ /cmdstat_eval(?:sha)?:calls=(\d+)/g;
     die "statuses: @{[ %code ]}\n" unless $code{200} == 5 && $code{429} == 25;
     die "remaining: @{[ sort keys %left ]}\n"
         unless join(',', sort keys %left) eq '0,1,2,3,4';
     # one call (two when Redis had lost the script: NOSCRIPT, EVAL)
     die "$calls script calls for 30 requests\n" unless $calls <= 2;
 },
 "GET /index.html"]
--- error_code eval
[429]
--- no_error_log
[error]
