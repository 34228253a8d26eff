# kordon_require_roles (any of) and kordon_require_scopes (all of), per
# method: a rule with methods= covers those methods, the one without
# covers the rest.  A valid token that lacks them gets 403 problem+json
# naming what is needed; `nginx -t` refuses rules that cannot work.

use Test::Kordon;
use Kordon::JWT;

add_block_preprocessor(jwt_preprocessor());

sub as { my ($line, @roles) = @_; auth_requests($line, map {
    'Bearer ' . token(roles => $_) } @roles) }

run_tests();

__DATA__

=== TEST 1: any of the roles
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles admin support;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
as('GET /t', ['support'], ['user', 'admin'], ['user'], [])
--- error_code eval
[200, 200, 403, 403]
--- response_body_like eval
['X-Kordon-Roles: support\r\n', 'X-Kordon-Roles: user,admin\r\n',
 'missing role: needs one of admin, support',
 'missing role: needs one of admin, support']



=== TEST 2: a token without the roles claim has no role
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer(roles => undef)
--- request
GET /t
--- problem: 403 missing role: needs user
--- response_body_unlike: eyJ
--- error_log
kordon jwt: forbidden for "user-42": missing role: needs user



=== TEST 3: roles compare exactly
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles admin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
as('GET /t', ['Admin'], ['admins'], ['adm'], ['x admin'], ['admin'])
--- error_code eval
[403, 403, 403, 403, 200]



=== TEST 4: a GET needs less than a POST
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles methods=POST,PUT,DELETE admin;
        kordon_require_roles user admin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[ map { @$_ } as('GET /t', ['user']), as('HEAD /t', ['user']),
              as('POST /t', ['user']), as('POST /t', ['admin']),
              as('DELETE /t', ['support']), as('GET /t', ['support']) ]
--- error_code eval
[200, 200, 403, 200, 403, 403]
--- response_body_like eval
['^GET /t', '', 'missing role: needs admin"', '^POST /t',
 'missing role: needs admin"', 'needs one of user, admin']



=== TEST 5: a methods= rule alone leaves the other methods free
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles methods=DELETE admin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[ map { @$_ } as('GET /t', []), as('DELETE /t', ['user']) ]
--- error_code eval
[200, 403]



=== TEST 6: all of the scopes, the missing ones named
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_scopes read write;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
auth_requests('GET /t', map { 'Bearer ' . token(scope => $_) }
              'read write', 'write  admin read', 'read', 'readwrite', undef)
--- error_code eval
[200, 200, 403, 403, 403]
--- response_body_like eval
['^GET /t', '^GET /t', '"missing scope: needs write"',
 '"missing scope: needs read, write"', '"missing scope: needs read, write"']



=== TEST 7: scopes per method
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_scopes methods=GET,HEAD read;
        kordon_require_scopes write;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[ map { @{ auth_requests($_, 'Bearer ' . token(scope => 'read')) } }
  'GET /t', 'POST /t', 'PATCH /t' ]
--- error_code eval
[200, 403, 403]
--- response_body_like eval
['^GET /t', 'missing scope: needs write', 'missing scope: needs write']



=== TEST 8: roles are checked before scopes, both must hold
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles admin;
        kordon_require_scopes payments;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
auth_requests('GET /t',
              'Bearer ' . token(roles => ['user'], scope => 'read'),
              'Bearer ' . token(roles => ['admin'], scope => 'read'),
              'Bearer ' . token(roles => ['admin'], scope => 'payments'))
--- error_code eval
[403, 403, 200]
--- response_body_like eval
['missing role: needs admin', 'missing scope: needs payments', '^GET']



=== TEST 9: a nested location inherits the rules, or sets its own
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles admin;
        location /t/inner { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
        location /t/own {
            kordon_require_roles user;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
        }
    }
--- raw_request eval
[ map { @$_ } as('GET /t/inner', ['user']), as('GET /t/own', ['user']) ]
--- error_code eval
[403, 200]



=== TEST 10: 403 is problem+json, with no token in it
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles methods=POST admin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer()
--- request
POST /t
{"amount": 100}
--- problem: 403 missing role: needs admin
--- response_body_unlike: eyJ|user-42|amount



=== TEST 11: nginx -t: two rules without methods=
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_roles user;
        kordon_require_roles admin;
    }
--- must_die
--- error_log
"kordon_require_roles" directive without "methods=" is duplicate



=== TEST 12: nginx -t: a method in two rules
--- config
    location /t {
        kordon_auth jwt;
        kordon_require_scopes methods=GET,POST read;
        kordon_require_scopes methods=POST write;
    }
--- must_die
--- error_log
"kordon_require_scopes" directive names a method that another one names



=== TEST 13: nginx -t: an unknown method, an empty list
--- config
    location /t { kordon_auth jwt; kordon_require_roles methods=GET,FETCH a; }
--- must_die
--- error_log
unknown method "FETCH" in "methods=GET,FETCH"



=== TEST 14: nginx -t: a role with a comma can never match
--- config
    location /t { kordon_auth jwt; kordon_require_roles "admin,user"; }
--- must_die
--- error_log
invalid name "admin,user"



=== TEST 15: nginx -t: methods= but no role
--- config
    location /t { kordon_auth jwt; kordon_require_roles methods=GET; }
--- must_die
--- error_log
"kordon_require_roles" directive needs at least one name



=== TEST 16: nginx -t: roles outside a location
--- http_config
    kordon_require_roles admin;
--- must_die
--- error_log
"kordon_require_roles" directive is not allowed here
