# The edge's Redis cache in the real stack, as conf/ wires it: one
# subscriber per edge on kordon:cache:purge (worker 0, whatever the
# number of workers), and a service that PUBLISHes a tag there drops its
# entries: the JWKS, tagged "jwks" by users, is a MISS again.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

sub jwks_cache { edge(GET => '/.well-known/jwks.json')->{headers}{'x-cache'} // '' }

ok wait_until(sub {
        ((redis_cli('PUBSUB', 'NUMSUB', 'kordon:cache:purge'))[1] // 0) == 1
    }, 10), 'the edge subscribed once to kordon:cache:purge';

jwks_cache();
ok wait_until(sub { jwks_cache() eq 'HIT' }, 5), 'the JWKS comes from the cache';

is((redis_cli('PUBLISH', 'kordon:cache:purge', 'jwks'))[0], 1,
   'a service publishes the tag; one edge hears it');
ok wait_until(sub {
        (redis_cli('EXISTS', 'kordon:cache:tag:jwks'))[0] == 0
    }, 5), '... and the tag is purged';
is jwks_cache(), 'MISS', 'the JWKS is fetched from users again';
ok wait_until(sub { jwks_cache() eq 'HIT' }, 5), '... and cached again';

is((redis_cli('PUBLISH', 'kordon:cache:purge', 'not a*tag'))[0], 1,
   'a garbled message');
ok wait_until(sub {
        open my $fh, '<', "$ENV{KORDON_LOGS}/edge-error.log" or return 0;
        scalar grep { /ignored a message of 9 bytes on channel "kordon:cache:purge"/ } <$fh>
    }, 5), '... is logged and ignored';
is jwks_cache(), 'HIT', '... and purges nothing';

done_testing;
