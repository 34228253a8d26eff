# $kordon_auth_error: empty when the request is authenticated or the
# location checks nothing, else one short word per reason, for logs and
# the other modules (the contract's list).  The API key words are in
# t/015.

use Test::Kordon;
use Kordon::JWT;

add_block_preprocessor(jwt_preprocessor(config => <<'CONF'));
    location /t {
        kordon_auth jwt;
        add_header X-Auth-Error "[$kordon_auth_error]" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /admin {
        kordon_auth jwt;
        kordon_require_roles admin;
        add_header X-Auth-Error "[$kordon_auth_error]" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /open {
        add_header X-Auth-Error "[$kordon_auth_error]" always;
        return 200;
    }
CONF

run_tests();

__DATA__

=== TEST 1: one word per reason a token is refused
--- raw_request eval
auth_requests('GET /t', 'Bearer ' . token(), undef, 'Bearer a b',
              'Bearer not.a.token', 'Bearer ' . token(exp => time - 3600),
              'Bearer ' . token(nbf => time + 3600),
              'Bearer ' . token(-sign => 'rs_other'),
              'Bearer ' . token(-sign => 'none'),
              'Bearer ' . token(-header => { kid => 'nobody' }),
              'Bearer ' . token(iss => 'https://evil.test'),
              'Bearer ' . token(aud => 'someone-else'),
              'Bearer ' . token(exp => undef))
--- error_code eval
[200, (401) x 11]
--- response_headers eval
[map { "X-Auth-Error: [$_]" } '', qw(missing malformed malformed expired
 not_yet_valid bad_signature bad_signature unknown_key wrong_issuer
 wrong_audience malformed)]



=== TEST 2: a valid token without the role: forbidden
--- raw_request eval: auth_requests('GET /admin', 'Bearer ' . token())
--- error_code: 403
--- response_headers
X-Auth-Error: [forbidden]



=== TEST 3: a location that checks nothing: empty
--- raw_request eval: auth_requests('GET /open', 'Bearer garbage', undef)
--- response_headers eval
['X-Auth-Error: []', 'X-Auth-Error: []']



=== TEST 4: the word is in the access log of the refused request
--- http_config
    log_format auth '$status $kordon_auth_error';
--- config
    location /t {
        kordon_auth jwt;
        access_log logs/auth.log auth;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[@{auth_requests('GET /t', 'Bearer ' . token(exp => time - 3600))},
 sub { # nginx logs after the answer is sent: give it a moment
       my $t = '';
       for (1 .. 50) {
           open my $f, '<', Test::Kordon::servroot() . '/logs/auth.log' or die;
           local $/; $t = <$f>;
           last if $t =~ /^401 expired$/m;
           select undef, undef, undef, 0.02;
       }
       die "access log: $t" unless $t =~ /^401 expired$/m }]
--- error_code: 401
