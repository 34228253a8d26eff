# Kordon: one Makefile that delegates to the parts.
#
#   make          build the nginx modules, the service kit, every backend
#   make run      start the whole stack under .run/ (installs what is missing)
#   make stop     stop it
#   make test     unit, edge (Test::Nginx style) and end-to-end tests
#   make test-bank the ledger's bank test (kill -9, PostgreSQL restart), 60 s
#   make bench    wrk against the edge: return 200 vs proxy through the kit
#   make asan     the same build with ASan + UBSan, in build/asan
#
# Backends are found by directory: backends/<name>/*.c links the kit
# (backends/common) into build/bin/kordon-<name>.  Unit tests are
# t/unit/test_*.c, one binary each.  Nothing here needs editing when a
# backend, a module or a test is added.

BUILD     ?= build
SAN       ?=
PKGS      := libmicrohttpd jansson libpq rdkafka libcrypto libpcre2-8 \
             libargon2 hiredis

CC        ?= gcc
CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
             -Wshadow -Wpointer-arith -Wstrict-prototypes -fPIC \
             -D_GNU_SOURCE -pthread -Ibackends/common
ifeq ($(SAN),1)
CFLAGS    += -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined -DKIT_DEBUG
LDFLAGS   += -fsanitize=address,undefined
endif
LDLIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm
CFLAGS    += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

KIT_SRC   := $(wildcard backends/common/*.c)
KIT_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(KIT_SRC))
KIT_LIB   := $(BUILD)/lib/libkordon.a

# nginx-independent logic of the edge modules (nginx-modules/*/*_core.c):
# compiled once more outside nginx so that unit tests and fuzzers reach it.
EDGE_SRC  := $(wildcard nginx-modules/*/*_core.c)
EDGE_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(EDGE_SRC))
EDGE_LIB  := $(BUILD)/lib/libkordon_edge.a

SERVICES  := $(filter-out common,$(notdir $(wildcard backends/*)))
BINS      := $(patsubst %,$(BUILD)/bin/kordon-%,$(SERVICES))

UNIT_SRC  := $(wildcard t/unit/test_*.c)
UNIT_BINS := $(patsubst t/unit/%.c,$(BUILD)/t/%,$(UNIT_SRC))

FIXT_SRC  := $(wildcard t/fixtures/*/*.c)
FIXT_BINS := $(sort $(patsubst t/fixtures/%/,$(BUILD)/t/fixture-%, \
             $(dir $(FIXT_SRC))))

.PHONY: all deps modules backends unit fixtures run stop reload test \
        test-unit test-edge test-e2e test-bank bench asan clean openapi

all: deps modules backends unit fixtures openapi

deps:
	@scripts/deps

modules: deps
	@SAN=$(SAN) scripts/build-modules $(BUILD)/nginx

backends: $(BINS)

unit: $(UNIT_BINS)

fixtures: $(FIXT_BINS)

# conf/openapi.yaml as JSON for the edge (kordon_openapi) and /docs, and
# Swagger UI from npm (scripts/openapi-build).
openapi: deps
	@scripts/openapi-build $(BUILD)/openapi

$(BUILD)/obj/%.o: %.c $(wildcard backends/common/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c -o $@ $<

$(KIT_LIB): $(KIT_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(EDGE_LIB): $(EDGE_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# objs_of: a call, so that the % of patsubst is not taken for the stem.
objs_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/bin/kordon-%: $$(call objs_of,$$(wildcard backends/$$*/*.c)) \
                       $(KIT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/t/fixture-%: $$(call objs_of,$$(wildcard t/fixtures/$$*/*.c)) \
                      $(KIT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/t/test_%: $(BUILD)/obj/t/unit/test_%.o $(KIT_LIB) $(EDGE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# users: 2FA (liboath), social login (libcurl, libjwt).  Its unit tests
# compile the files they test (as the ledger's do) and the OIDC fixture
# signs id_tokens, so they link the same libraries.
USERS_PKGS := libjwt liboath libcurl
USERS_LIBS  = $(shell pkg-config --libs $(USERS_PKGS) 2>/dev/null)
$(BUILD)/bin/kordon-users: LDLIBS += $(USERS_LIBS)
$(BUILD)/t/test_users_%: LDLIBS += $(USERS_LIBS)
$(BUILD)/t/fixture-oidc: LDLIBS += $(USERS_LIBS)
$(BUILD)/t/test_users_oauth: | $(BUILD)/t/fixture-oidc

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

run: all
	@scripts/stack start

stop:
	@scripts/stack stop

reload:
	@scripts/stack reload

test: all
	@scripts/test all

test-unit: all
	@scripts/test unit

test-edge: all
	@scripts/test edge

test-e2e: all
	@scripts/test e2e

# The ledger's bank test for a full minute (make test runs 20 s of it).
test-bank: all
	@LEDGER_BANK_SECONDS=60 KORDON_E2E_TESTS=t/e2e/112-ledger-bank.t \
	    scripts/test e2e

bench: all
	@scripts/bench

asan:
	@KORDON_SWAGGER_SEED=build/openapi/swagger-ui \
	    $(MAKE) --no-print-directory BUILD=build/asan SAN=1 all

clean:
	rm -rf build
