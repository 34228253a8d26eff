# kordon_strip_headers: client-sent X-Kordon-* request headers reach
# neither variables nor upstreams; the edge's own ones still do.

use Test::Kordon;

plan tests => repeat_each() * (blocks() * 3 + 3);

run_tests();

__DATA__

=== TEST 1: $http_x_kordon_user is empty, other headers stay
--- config
    location /t { return 200 "[$http_x_kordon_user][$http_x_other]\n"; }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
X-Other: ok
--- response_body
[][ok]
--- no_error_log
[error]



=== TEST 2: any case, any X-Kordon- name
--- config
    location /t {
        return 200 "[$http_x_kordon_roles][$http_x_kordon_session]\n";
    }
--- request
GET /t
--- more_headers
x-kordon-roles: admin
X-KORDON-SESSION: s1
--- response_body
[][]
--- error_log
kordon strip header "x-kordon-roles"



=== TEST 3: the upstream gets none of them, other headers pass
--- config
    location /t { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
x-kordon-roles: admin
X-Kordon-Signature: forged
X-Other: ok
--- response_body_like: ^GET /t HTTP/1.0\r\n.*X-Other: ok\r\n
--- response_body_unlike: (?i)kordon
--- no_error_log
[error]



=== TEST 4: identity set by the edge replaces the client's
--- config
    location /t {
        proxy_set_header X-Kordon-User edge-7;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request
GET /t
--- more_headers
X-Kordon-User: client-42
--- response_body_like: \r\nX-Kordon-User: edge-7\r\n
--- response_body_unlike: client-42
--- no_error_log
[error]



=== TEST 5: a backend server block in the same nginx sees nothing
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        kordon_strip_headers off;
        return 200 "[$http_x_kordon_user][$http_x_other]\n";
    }
--- config
    location /t { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2; }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
X-Other: ok
--- response_body
[][ok]
--- no_error_log
[error]



=== TEST 6: kordon_strip_headers off in the server keeps them
--- config
    kordon_strip_headers off;
    location /t { return 200 "[$http_x_kordon_user]\n"; }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
--- response_body
[42]
--- no_error_log
kordon strip header



=== TEST 7: off in a location gives them back, upstream included
--- config
    location /t {
        kordon_strip_headers off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
--- response_body_like: \r\nX-Kordon-User: 42\r\n
--- error_log
kordon restore headers



=== TEST 8: on in a location of a server that has it off
--- http_config
    kordon_strip_headers off;
--- config
    set $seen "[$http_x_kordon_user]";
    location /t {
        kordon_strip_headers on;
        return 200 "$seen[$http_x_kordon_user]\n";
    }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
--- response_body
[42][]
--- no_error_log
[error]



=== TEST 9: error_page to a named location resets r->ctx, not the guard
--- config
    location /t { return 404; }
    error_page 404 = @keep;
    location @keep {
        kordon_strip_headers off;
        return 200 "[$http_x_kordon_user][$http_x_kordon_roles]\n";
    }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
X-Kordon-Roles: admin
--- response_body
[42][admin]
--- no_error_log
[error]



=== TEST 10: and the next redirect strips them again
--- config
    location /t { kordon_strip_headers off; return 404; }
    error_page 404 = @strip;
    location @strip { return 200 "[$http_x_kordon_user]\n"; }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
--- response_body
[]
--- no_error_log
[error]



=== TEST 11: many headers, across list parts, all others in order
--- config
    location /t { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /t
--- more_headers eval
join '', map { "X-Kordon-H$_: $_\nX-Keep-$_: $_\n" } 1 .. 40
--- response_body_like eval
my $keep = join '', map { "X-Keep-$_: $_\r\n" } 1 .. 40;
qr/\r\n\Q$keep\E/
--- response_body_unlike: (?i)kordon
--- no_error_log
[error]



=== TEST 12: underscores count as dashes when nginx accepts them
--- config
    underscores_in_headers on;
    location /t { return 200 "[$http_x_kordon_user][$http_x_other]\n"; }
--- request
GET /t
--- more_headers
X_Kordon_User: 42
X_Other: ok
--- response_body
[][ok]
--- error_log
kordon strip header "X_Kordon_User"



=== TEST 13: names outside the namespace are kept
--- config
    location /t {
        return 200 "[$http_x_kordonx][$http_kordon_user][$http_x_kordon]\n";
    }
--- request
GET /t
--- more_headers
X-Kordonx: 1
Kordon-User: 2
X-Kordon: 3
--- response_body
[1][2][3]
--- no_error_log
kordon strip header



=== TEST 14: an auth_request subrequest sees the stripped list
--- config
    location /t { auth_request /auth; return 200 "ok\n"; }
    location = /auth {
        if ($http_x_kordon_user) { return 403; }
        return 204;
    }
--- request
GET /t
--- more_headers
X-Kordon-User: 42
--- response_body
ok
--- no_error_log
[error]
