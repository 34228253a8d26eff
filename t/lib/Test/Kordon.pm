package Test::Kordon;

=head1 NAME

Test::Kordon - Test::Nginx-style tests of the Kordon nginx modules

=head1 SYNOPSIS

    use Test::Kordon;

    plan tests => repeat_each() * (blocks() * 2);
    run_tests();

    __DATA__

    === TEST 1: a client cannot send identity
    --- config
        location /t { return 200 "[$http_x_kordon_user]"; }
    --- request
    GET /t
    --- more_headers
    X-Kordon-User: 42
    --- response_body: []

=head1 DESCRIPTION

For each block: writes nginx.conf into the server root, starts nginx,
sends the request(s) over a raw socket as HTTP/1.1 with C<Host> and
C<Connection: close>, compares each response, stops nginx (by its pid,
waiting for it to exit) and checks the part of error.log written since
the block began.  Blocks run in random order unless C<no_shuffle()>.

nginx is C<$KORDON_NGINX_BINARY> (default /usr/sbin/nginx), started as
C<nginx -p SERVROOT -c conf/nginx.conf> with C<daemon on>,
C<master_process on>, C<worker_processes 1>, error_log at debug level in
SERVROOT/logs, and one C<load_module> per .so in C<$KORDON_NGINX_MODULES>
(default build/nginx/modules; ngx_http_kordon_module.so first).  The
server listens on 127.0.0.1:C<$TEST_NGINX_SERVER_PORT>, with C<root html>.

=head1 SECTIONS

=over

=item main_config, http_config, config

Text for the main context, the http block and the server block.

=item request

C<METHOD URI [HTTP/1.x]> then, on the next lines, the body (its final
newline dropped; Content-Length is added).  With C<eval>, an array of
requests, sent one after another on new connections; expectations that
are arrays then hold one value per request.  A code reference in the
array is a step run between two requests (say C<sub { reload_nginx() }>);
it takes no expectation, and a step that dies fails the block.

=item raw_request

Bytes sent as they are (use C<eval> to write C<\r\n>).

=item more_headers

Extra request header lines; a C<Host> or C<Connection> here replaces the
default one.

=item error_code

The expected status, default 200 (or the status of C<problem>).

=item response_headers, response_headers_like

C<Name: value> (exact) or C<Name: regex>; C<!Name> means absent.  Each
line is one test.

=item response_body, response_body_like, response_body_unlike

Exact body (a failure shows a unified diff unless C<no_long_string()>),
or a regex (C</s>).

=item problem

C<STATUS [detail]>: the body is RFC 9457 JSON with exactly type
(about:blank), title, status, detail and request_id (and optionally
errors), Content-Type is application/problem+json and request_id equals
the X-Request-Id header.  One test.

=item error_log, no_error_log

One substring per line (or, with C<eval>, an array of strings and qr//)
that must, or must not, appear in this block's error.log lines.  Each is
one test.

=item wait

Seconds to sleep before the error log is checked.

=item must_die

nginx must refuse to start (C<nginx -t> would fail): one test, and no
request is sent.  C<error_log> and C<no_error_log> then look at what
nginx printed as well as at error.log.

=item ONLY, SKIP

As in Test::Base.

=back

A block whose error.log shows a worker "exited on signal", or that
leaves a sanitizer report, fails with one extra test.

=head1 FUNCTIONS

C<run_tests>, C<run_test($block)>, C<repeat_each($n)>, C<no_shuffle>,
C<no_long_string>, C<add_block_preprocessor(sub { my $block = shift })>,
C<server_port>, C<server_port2>, C<servroot>, C<html_dir>,
C<reload_nginx> (SIGHUP, then wait until the new workers serve and the
old ones are gone; dies when the reload failed), and
Test::Base's C<blocks>, C<plan> and the Test::More functions.
C<problem_config()> returns the edge's error_page setup (every error to
a C<kordon_problem> location) for a block's config.

=head1 VARIABLES

C<$TEST_NGINX_*> in any section is replaced from the environment:
C<$TEST_NGINX_SERVER_PORT>, C<$TEST_NGINX_SERVER_PORT2> (free, for a
second server block), C<$TEST_NGINX_SERVROOT>, C<$TEST_NGINX_HTML_DIR>,
C<$TEST_NGINX_ECHO_PORT>, a backend started on first use that answers
with the request head it received, and C<$TEST_NGINX_SILENT_PORT>, one
that accepts connections and never answers.

=head1 ENVIRONMENT

C<KORDON_NGINX_BINARY>, C<KORDON_NGINX_MODULES>, C<TEST_NGINX_SERVROOT>
(default t/servroot; t/servroot-NAME for t/NAME.t when
C<KORDON_TEST_PARALLEL=1>, so that C<prove -j> runs files side by side),
C<TEST_NGINX_PORT> (fixed port),
C<TEST_NGINX_TIMEOUT> (seconds, default 5), C<TEST_NGINX_NO_SHUFFLE>.
C<KORDON_ASAN=1> (implied by the C<.asan> mark scripts/build-modules
leaves in a sanitizer build) takes the modules from
build/asan/nginx/modules and runs nginx with libasan preloaded,
C<detect_leaks=0> (nginx frees its pools at exit by design),
C<detect_odr_violation=0> (every dynamic module defines its own
C<ngx_modules> array, which nginx finds with dlsym()) and sanitizer
reports written to SERVROOT/logs.

=cut

use strict;
use warnings;

use Test::Base -base;
use Test::Base::Filter ();

use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use List::Util ();
use POSIX ();
use Text::Diff qw(diff);
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    run_tests run_test repeat_each no_shuffle no_long_string
    add_block_preprocessor server_port server_port2 servroot html_dir
    problem_config reload_nginx
);

my $Top = abs_path(dirname(__FILE__) . '/../../..');

my $Nginx   = $ENV{KORDON_NGINX_BINARY} || '/usr/sbin/nginx';
my $Asan    = ($ENV{KORDON_ASAN} // '') eq '1';
my $Modules = $ENV{KORDON_NGINX_MODULES}
              || "$Top/build/" . ($Asan ? 'asan/' : '') . 'nginx/modules';
my $Root    = $ENV{TEST_NGINX_SERVROOT}
              || ($ENV{KORDON_TEST_PARALLEL}
                  ? "$Top/t/servroot-" . basename($0, '.t')
                  : "$Top/t/servroot");
my $Timeout = $ENV{TEST_NGINX_TIMEOUT} || 5;

$Modules = "$Top/$Modules" unless $Modules =~ m{^/};
$Root    = "$Top/$Root"    unless $Root =~ m{^/};

# scripts/build-modules marks a sanitizer build of the modules
$Asan ||= -e "$Modules/.asan";

# Ports of the stack, which a test must never take (see scripts/lib.sh),
# and the ranges of the e2e and bench stacks, shifted by 10000 and 12000
# (scripts/test, scripts/bench).
my %Reserved = map { $_ => 1 } 8080, 8443, 9180, 9190, 15432, 16379,
                               18001 .. 18010;
my @ReservedRange = (18000, 30010);

my $RepeatEach   = 1;
my $Shuffle      = !$ENV{TEST_NGINX_NO_SHUFFLE};
my $LongString   = 1;
my @Preprocessors;
my $EchoPid;

my $Port  = $ENV{TEST_NGINX_PORT} || free_port();
my $Port2 = free_port($Port);

$ENV{TEST_NGINX_SERVER_PORT}  = $Port;
$ENV{TEST_NGINX_SERVER_PORT2} = $Port2;
$ENV{TEST_NGINX_SERVROOT}     = $Root;
$ENV{TEST_NGINX_HTML_DIR}     = "$Root/html";

# The edge's error pages: every error nginx itself answers becomes a
# problem+json body.  A URI, not a named location: nginx refuses to
# redirect to a named location while the URI is still empty, as it is
# for a 414 or a request line it could not parse.
sub problem_config {
    return <<'CONF';
    error_page 400 401 403 404 405 408 413 414 429 494
               500 502 503 504 /.kordon/problem;
    location = /.kordon/problem { internal; kordon_problem; }
CONF
}

sub repeat_each { $RepeatEach = shift if @_; return $RepeatEach }
sub no_shuffle { $Shuffle = 0 }
sub no_long_string { $LongString = 0 }
sub add_block_preprocessor { push @Preprocessors, @_ }
sub server_port { $Port }
sub server_port2 { $Port2 }
sub servroot { $Root }
sub html_dir { "$Root/html" }

# A TCP port on 127.0.0.1 that nobody listens on now.
sub free_port {
    my %not = map { $_ => 1 } @_;
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp',
                                      ReuseAddr => 1)
            or die "cannot bind a free port: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $Reserved{$port} || $not{$port}
                            || ($port >= $ReservedRange[0]
                                && $port <= $ReservedRange[1]);
    }
    die "no free port found";
}

sub run_tests {
    # without a plan, plan as we go: Test::Base's END would plan again
    # after a done_testing()
    Test::More::plan('no_plan') unless Test::More->builder->has_plan;
    my @blocks = Test::Base::blocks();
    @blocks = List::Util::shuffle(@blocks) if $Shuffle && @blocks > 1;
    stop_nginx();
    remove_tree($Root);
    make_path("$Root/conf", "$Root/logs", "$Root/html");
    write_file("$Root/html/index.html", "It works!\n");
    for my $block (@blocks) {
        $_->($block) for @Preprocessors;
        run_test($block);
    }
    stop_nginx();
    stop_echo_backend();
}

sub run_test {
    my $block = shift;
    my $name = $block->name;
    my $log = "$Root/logs/error.log";
    my $from = -s $log || 0;

    my $error = start_nginx($block);
    if (defined $block->must_die) {
        ok($error, "$name - nginx refused to start") or stop_nginx();
        check_error_log($block, $name, $log, $from, $error);
        return;
    }
    if ($error) {
        fail("$name - nginx started");
        diag($error . log_slice($log, $from));
        return;
    }

    for my $rep (1 .. $RepeatEach) {
        my @req = requests($block);
        my $n = grep { ref ne 'CODE' } @req;
        my $i = 0;
        for my $req (@req) {
            if (ref $req eq 'CODE') {
                next if eval { $req->(); 1 };
                fail("$name - step");
                diag($@);
                next;
            }
            my $tag = $name . ($n > 1 ? " (req $i)" : '')
                            . ($RepeatEach > 1 ? " (repeat $rep)" : '');
            check_response($block, $tag, $i, send_request($req));
            $i++;
        }
    }

    # stopping flushes every line the block will log, a crash at exit too
    sleep($block->wait) if $block->wait;
    stop_nginx();
    check_error_log($block, $name, $log, $from);
}

# The requests of a block: "--- request" (a string or an eval'd array of
# strings) or "--- raw_request", sent byte for byte.
sub requests {
    my $block = shift;
    if (defined $block->raw_request) {
        my $raw = $block->raw_request;
        return map { ref eq 'CODE' ? $_ : expand($_) }
               ref $raw ? @$raw : ($raw);
    }
    my $req = $block->request // die $block->name . ": no request\n";
    my @more = grep { /\S/ }
               split /\n/, expand($block->more_headers // '');
    return map { ref eq 'CODE' ? $_ : build_request($_, @more) }
           ref $req ? @$req : ($req);
}

sub build_request {
    my ($req, @more) = @_;
    my ($line, $body) = split /\n/, expand($req), 2;
    $body //= '';
    $body =~ s/\n\z//;
    $line .= ' HTTP/1.1' unless $line =~ m{ HTTP/\d\.\d$};
    my %has = map { /^([^:]+):/ ? (lc $1 => 1) : () } @more;
    my @h = @more;
    unshift @h, 'Host: localhost' unless $has{host};
    push @h, 'Connection: close' unless $has{connection};
    push @h, 'Content-Length: ' . length($body)
        if length $body && !$has{'content-length'}
           && !$has{'transfer-encoding'};
    return join("\r\n", $line, @h) . "\r\n\r\n" . $body;
}

# Substitutes $TEST_NGINX_* from the environment.
sub expand {
    my $s = shift;
    return $s if !defined $s || ref $s;
    $s =~ s{\$(TEST_NGINX_[A-Z0-9_]+)}{
        $1 eq 'TEST_NGINX_ECHO_PORT' ? echo_port()
        : $1 eq 'TEST_NGINX_SILENT_PORT' ? silent_port()
        : $ENV{$1} // die "unknown variable \$$1\n"
    }ge;
    return $s;
}

# Sends one request and reads the response until it is complete.
sub send_request {
    my $raw = shift;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$Port",
                                  Proto => 'tcp', Timeout => $Timeout)
        or return { error => "cannot connect to port $Port: $!" };
    $s->autoflush(1);
    my $head_only = $raw =~ /^HEAD /;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($s, $raw) // return { error => "write failed: $!" };

    my ($buf, $res) = ('', undef);
    my $sel = IO::Select->new($s);
    my $deadline = time + $Timeout;
    while (1) {
        my $left = $deadline - time;
        return { error => "timeout after ${Timeout}s", raw => $buf }
            if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return { error => "read failed: $!", raw => $buf } unless defined $n;
        $res = parse_response($buf, $head_only, $n == 0);
        last if $res || $n == 0;
    }
    close $s;
    return $res || { error => "incomplete response", raw => $buf };
}

# Returns the parsed response once $buf holds all of it, else undef.
sub parse_response {
    my ($buf, $head_only, $eof) = @_;
    while ($buf =~ /^HTTP\/1\.\d 1\d\d [^\n]*\r\n\r\n/) {   # 100 Continue
        $buf =~ s/^.*?\r\n\r\n//s;
    }
    my $end = index($buf, "\r\n\r\n");
    return undef if $end < 0;
    my ($status_line, @lines) = split /\r\n/, substr($buf, 0, $end);
    my ($status) = $status_line =~ m{^HTTP/\d\.\d (\d{3})}
        or return { error => "bad status line: $status_line", raw => $buf };
    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        push @{ $h{lc $k} }, $v;
    }
    my $res = { status => $status, headers => \%h, raw => $buf };
    my $rest = substr($buf, $end + 4);

    if ($head_only || $status == 204 || $status == 304) {
        $res->{body} = '';
    } elsif (lc(($h{'transfer-encoding'} || [''])->[0]) eq 'chunked') {
        my $body = '';
        while (1) {
            $rest =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n// or return undef;
            my $n = hex $1;
            if ($n == 0) {
                return undef unless $rest =~ /\r\n\z/ || $eof;
                last;
            }
            return undef if length $rest < $n + 2;
            $body .= substr($rest, 0, $n);
            $rest = substr($rest, $n + 2);
        }
        $res->{body} = $body;
    } elsif (defined $h{'content-length'}) {
        my $n = $h{'content-length'}[0];
        return undef if length $rest < $n;
        $res->{body} = substr($rest, 0, $n);
    } else {
        return undef unless $eof;
        $res->{body} = $rest;
    }
    return $res;
}

# The value expected for request $i: arrays give one per request.
sub nth {
    my ($v, $i) = @_;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v;
}

sub check_response {
    my ($block, $name, $i, $res) = @_;
    if ($res->{error}) {
        fail("$name - response received");
        diag("$res->{error}\n" . ($res->{raw} // ''));
        return;
    }
    my $want = sub { my $s = shift; expand(nth(scalar $block->$s, $i)) };

    my $problem = $want->('problem');
    my $code = $want->('error_code');
    $code //= $problem =~ /^(\d+)/ ? $1 : 200 if defined $problem;
    is($res->{status}, $code // 200, "$name - status code ok");

    for my $line (lines($want->('response_headers'))) {
        if ($line =~ /^!\s*(\S+)/) {
            ok(!exists $res->{headers}{lc $1}, "$name - header $1 absent")
                or diag("$1: " . header($res, $1));
        } elsif ($line =~ /^([^:]+):\s*(.*)$/) {
            is(header($res, $1), $2, "$name - header $1 ok");
        }
    }
    for my $line (lines($want->('response_headers_like'))) {
        my ($k, $re) = $line =~ /^([^:]+):\s*(.*)$/ or next;
        like(header($res, $k), qr/$re/, "$name - header $k like ok");
    }

    my $body = $res->{body};
    if (defined(my $text = $want->('response_body'))) {
        if ($LongString && $body ne $text) {
            fail("$name - response_body - response is expected");
            diag(diff(\$text, \$body, { STYLE => 'Unified' }));
        } else {
            is($body, $text, "$name - response_body - response is expected");
        }
    }
    if (defined(my $re = $want->('response_body_like'))) {
        like($body, ref $re ? $re : qr/$re/s,
             "$name - response_body_like - response is expected");
    }
    if (defined(my $re = $want->('response_body_unlike'))) {
        unlike($body, ref $re ? $re : qr/$re/s,
               "$name - response_body_unlike - response is expected");
    }
    check_problem($name, $res, $problem) if defined $problem;
}

sub lines {
    my $v = shift;
    return () unless defined $v;
    return grep { /\S/ } split /\n/, expand($v);
}

sub header {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

# "--- problem: STATUS [detail]": an RFC 9457 body as every Kordon error
# has, whose request_id is the X-Request-Id header.
sub check_problem {
    my ($name, $res, $spec) = @_;
    my ($status, $detail) = $spec =~ /^(\d+)\s*(.*?)\s*$/s;
    my @why;
    my $type = header($res, 'Content-Type') // '';
    push @why, "Content-Type is \"$type\""
        unless $type eq 'application/problem+json';
    my $p = eval { JSON::PP->new->utf8->decode($res->{body}) };
    utf8::decode($detail);
    if (ref $p ne 'HASH') {
        push @why, "body is not a JSON object: " . ($@ || $res->{body});
    } else {
        my @keys = sort grep { $_ ne 'errors' } keys %$p;
        push @why, "members are @keys"
            unless "@keys" eq 'detail request_id status title type';
        push @why, "type is not about:blank"
            unless ($p->{type} // '') eq 'about:blank';
        push @why, "status is " . ($p->{status} // 'missing')
            unless defined $p->{status} && !ref $p->{status}
                   && $p->{status} =~ /^\d+$/ && $p->{status} == $status;
        push @why, "title is empty" unless length($p->{title} // '');
        push @why, "detail is \"" . ($p->{detail} // '') . "\""
            unless length($detail) ? ($p->{detail} // '') eq $detail
                                   : length($p->{detail} // '');
        my $id = header($res, 'X-Request-Id') // '';
        push @why, "request_id \"" . ($p->{request_id} // '')
                   . "\" is not X-Request-Id \"$id\" (32 hex digits)"
            unless $id =~ /^[0-9a-f]{32}$/
                   && ($p->{request_id} // '') eq $id;
    }
    ok(!@why, "$name - problem $status ok")
        or diag(join("\n", @why, "body: $res->{body}"));
}

sub check_error_log {
    my ($block, $name, $log, $from, $printed) = @_;
    my @want = patterns(scalar $block->error_log);
    my @never = patterns(scalar $block->no_error_log);
    my $slice = log_slice($log, $from) . ($printed // '');

    for my $p (@want) {
        ok(matches($slice, $p), "$name - error_log has \"$p\"");
    }
    for my $p (@never) {
        ok(!matches($slice, $p), "$name - error_log has no \"$p\"")
            or diag(join '', grep { matches($_, $p) } split /^/, $slice);
    }
    check_crash($name, $slice);
}

sub patterns {
    my $v = shift;
    return () unless defined $v;
    return map { ref $_ ? $_ : expand($_) } @$v if ref $v eq 'ARRAY';
    return lines($v);
}

sub matches {
    my ($text, $p) = @_;
    return ref $p eq 'Regexp' ? $text =~ $p : index($text, $p) >= 0;
}

# A crash never passes, whatever the block expects: a worker that died on
# a signal, or a sanitizer report when KORDON_ASAN=1.
sub check_crash {
    my ($name, $slice) = @_;
    my @alert = grep { /\[alert\].*exited on signal/ } split /^/, $slice;
    if (@alert) {
        fail("$name - no worker crashed");
        diag(@alert);
    }
    for my $f (grep { !/\.seen$/ } glob("$Root/logs/*san.*")) {
        fail("$name - no sanitizer report");
        diag(read_file($f));
        rename $f, "$f.seen";
    }
}

sub log_slice {
    my ($log, $from) = @_;
    open my $fh, '<', $log or return '';
    seek $fh, $from, 0;
    local $/;
    return <$fh> // '';
}

sub nginx_conf {
    my $block = shift;
    my $so = join '', map { "load_module $_;\n" } modules();
    my $user = $> == 0 ? "user root;\n" : '';
    my $main = expand($block->main_config // '');
    my $http = expand($block->http_config // '');
    my $conf = expand($block->config // '');
    my $t = basename($0);
    return <<"CONF";
# Test::Kordon: $t, @{[ $block->name ]}
$so$user
daemon on;
master_process on;
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log debug;

$main
events {
    worker_connections 256;
}

http {
    access_log logs/access.log;
    default_type text/plain;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

$http
    server {
        listen 127.0.0.1:$Port;
        server_name localhost;
        root html;

$conf
    }
}
CONF
}

# In the order of conf/nginx.conf.template's load_module lines, so the
# tests run the phase handlers in the order production does (nginx runs
# the handlers of one phase from the last loaded module to the first);
# a module the template does not name yet comes last.
sub modules {
    opendir my $d, $Modules or die "no modules in \"$Modules\": $!\n";
    my @so = sort grep { /\.so$/ } readdir $d;
    my %have = map { $_ => 1 } @so;
    open my $t, '<', "$Top/conf/nginx.conf.template"
        or die "cannot read conf/nginx.conf.template: $!\n";
    my @first = map { m{^load_module\s+\S*/(\S+\.so);} ? $1 : () } <$t>;
    my %first = map { $_ => 1 } @first;
    @so = ((grep { $have{$_} } @first), (grep { !$first{$_} } @so));
    return map { "$Modules/$_" } @so;
}

# Writes the block's nginx.conf and starts nginx; returns an error text.
my $AsanLib;
sub start_nginx {
    my $block = shift;
    stop_nginx();
    write_file("$Root/conf/nginx.conf", nginx_conf($block));
    local %ENV = %ENV;
    if ($Asan) {
        chomp($AsanLib ||= `gcc -print-file-name=libasan.so`);
        $ENV{LD_PRELOAD} = $AsanLib;
        $ENV{ASAN_OPTIONS} = "detect_leaks=0:abort_on_error=1"
                             . ":detect_odr_violation=0"
                             . ":log_path=$Root/logs/asan";
        $ENV{UBSAN_OPTIONS} = "print_stacktrace=1:log_path=$Root/logs/ubsan";
    }
    my $out = `$Nginx -p $Root/ -c conf/nginx.conf -e logs/error.log 2>&1`;
    return "nginx failed to start (exit " . ($? >> 8) . ")\n$out" if $?;
    for (1 .. 100) {
        return '' if -s "$Root/logs/nginx.pid";
        sleep 0.05;
    }
    return "nginx wrote no pid file\n$out";
}

# SIGHUP to the master; returns once the new workers serve and the old
# ones have exited, so the next request meets the new configuration.
sub reload_nginx {
    my $log = "$Root/logs/error.log";
    my $from = -s $log || 0;
    my $pid = master_pid() or die "reload: nginx is not running\n";
    kill 'HUP', $pid or die "reload: cannot signal $pid: $!\n";
    my $deadline = time + $Timeout;
    while (time < $deadline) {
        my $slice = log_slice($log, $from);
        die "reload failed:\n$slice" if $slice =~ /\[emerg\]/;
        return if $slice =~ /start worker process/
                  && $slice =~ /worker process \d+ exited with code/;
        sleep 0.02;
    }
    die "reload did not finish in ${Timeout}s\n";
}

sub master_pid {
    open my $fh, '<', "$Root/logs/nginx.pid" or return;
    my ($pid) = (<$fh> // '') =~ /(\d+)/;
    return $pid;
}

sub stop_nginx {
    my $pidfile = "$Root/logs/nginx.pid";
    open my $fh, '<', $pidfile or return;
    my ($pid) = <$fh> =~ /(\d+)/ or return;
    close $fh;
    kill 'TERM', $pid or do { unlink $pidfile; return };
    for (1 .. 200) {
        return unless alive($pid);
        sleep 0.02;
    }
    kill 'KILL', $pid;
    unlink $pidfile;
}

# The daemonized master is not our child: once it exits it may stay a
# zombie until init reaps it, which counts as gone.
sub alive {
    my $pid = shift;
    return 0 unless kill 0, $pid;
    my $stat = read_file("/proc/$pid/stat");
    return $stat !~ /^\d+ \(.*\) Z/s;
}

# $TEST_NGINX_ECHO_PORT: a backend, started on first use, that answers
# 200 with the request head it received, so a test sees exactly what
# nginx sent upstream.
my $EchoPort;
sub echo_port {
    return $EchoPort if $EchoPort;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1, Proto => 'tcp')
        or die "cannot listen for the echo backend: $!";
    $EchoPort = $l->sockport;
    $ENV{TEST_NGINX_ECHO_PORT} = $EchoPort;
    defined($EchoPid = fork) or die "fork: $!";
    return $EchoPort if $EchoPid;
    while (my $c = $l->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/ && sysread($c, $req, 8192, length $req)) {}
        my ($head) = $req =~ /^(.*?\r\n)\r\n/s;
        $head //= $req;
        syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     . "Content-Length: " . length($head)
                     . "\r\nConnection: close\r\n\r\n$head");
        close $c;
    }
    POSIX::_exit(0);
}

# $TEST_NGINX_SILENT_PORT: accepts connections (the kernel does) and
# never answers, for upstream timeouts.
my $Silent;
sub silent_port {
    $Silent ||= IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Listen => 64,
                                      ReuseAddr => 1, Proto => 'tcp')
        or die "cannot listen for the silent backend: $!";
    return $ENV{TEST_NGINX_SILENT_PORT} = $Silent->sockport;
}

sub stop_echo_backend {
    return unless $EchoPid;
    kill 'TERM', $EchoPid;
    waitpid $EchoPid, 0;
    $EchoPid = undef;
}

# The eval filter, run in package main: Test::Base::Filter's own has
# functions such as join() that shadow Perl's in the evaluated code.
package Test::Kordon::Filter {
    our @ISA = ('Test::Base::Filter');

    sub eval {
        my ($self, $code) = @_;
        my @value = CORE::eval("package main; $code");
        die "eval filter: $@" if $@;
        return @value;
    }
}

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "cannot write \"$path\": $!";
    print $fh $text;
    close $fh or die "cannot write \"$path\": $!";
}

sub read_file {
    my $path = shift;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh>;
}

my $Parent = $$;

END {
    local $?;
    if ($$ == $Parent) {    # not in the echo backend
        stop_nginx();
        stop_echo_backend();
    }
}

1;
