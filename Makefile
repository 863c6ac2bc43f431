# pixplane build. `make` builds everything with -Werror into build/; `make test` (alias
# `make asan`) builds a sanitized test build with fault points and runs the unit and
# integration tests, bringing up the local stack if it is not up.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
OPT     ?= -O2

CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -Wno-missing-field-initializers \
           -D_GNU_SOURCE -fno-strict-aliasing \
           -Icommon -I$(BUILD)/gen -I/usr/include/postgresql $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DPIX_TEST_HOOKS
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(TEST_HOOKS),1)
CFLAGS  += -DPIX_TEST_HOOKS
endif

LIBS      := -lev -lhttp_parser -lcjson -lpq -lcurl -lssl -lcrypto -lpthread -lm
VIPS_LIBS  = $(shell pkg-config --libs vips libexif 2>/dev/null)
VIPS_CFLAGS= $(shell pkg-config --cflags vips libexif 2>/dev/null)

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
LIBCOMMON  := $(BUILD)/libpixcommon.a

API_SRC    := $(wildcard services/api/*.c)
API_OBJ    := $(API_SRC:%.c=$(BUILD)/%.o)
API_LIBOBJ := $(filter-out %/main.o,$(API_OBJ))

WORKER_SRC    := $(wildcard services/worker/*.c)
WORKER_OBJ    := $(WORKER_SRC:%.c=$(BUILD)/%.o)
WORKER_LIBOBJ := $(filter-out %/main.o,$(WORKER_OBJ))
REC_SRC       := $(wildcard services/reconciler/*.c)
REC_OBJ       := $(REC_SRC:%.c=$(BUILD)/%.o)
REC_LIBOBJ    := $(filter-out %/main.o,$(REC_OBJ))
HOOKS_SRC     := $(wildcard services/hooks/*.c)
HOOKS_OBJ     := $(HOOKS_SRC:%.c=$(BUILD)/%.o)
HOOKS_LIBOBJ  := $(filter-out %/main.o,$(HOOKS_OBJ))
PIXCTL_SRC    := $(wildcard pixctl/*.c)
PIXCTL_OBJ    := $(PIXCTL_SRC:pixctl/%.c=$(BUILD)/pixctl-obj/%.o)
PIXCTL_LIBOBJ := $(filter-out %/main.o,$(PIXCTL_OBJ))

UNIT_SRC   := $(wildcard tests/unit/common/test_*.c tests/unit/services/*/test_*.c tests/unit/pixctl/test_*.c)
UNIT_BIN   := $(UNIT_SRC:%.c=$(BUILD)/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

BINS := $(BUILD)/pixplane-api $(BUILD)/pixplane-mock-kafka
ifneq ($(WORKER_SRC),)
BINS += $(BUILD)/pixplane-worker
endif
ifneq ($(REC_SRC),)
BINS += $(BUILD)/pixplane-reconciler
endif
ifneq ($(PIXCTL_SRC),)
BINS += $(BUILD)/pixctl
endif
ifneq ($(HOOKS_SRC),)
BINS += $(BUILD)/pixplane-hooks
endif

FORMAT_SRC = $(wildcard common/*.[ch] services/*/*.[ch] pixctl/*.[ch] tests/unit/*/*.c \
             tests/unit/services/*/*.c tests/tools/*.c minio-dev/*.c)

.PHONY: all test unit integration asan clean format check-format docs tsan scan web
all: $(BINS) $(UNIT_BIN) $(TOOL_BIN) $(if $(wildcard web/node_modules),web/dist/.built)

# The browser pages (web/): bundled by esbuild into web/dist, which the API serves at /app/.
# Needs web/node_modules (minio-dev/install-deps runs npm ci).
web: web/dist/.built
web/dist/.built: $(shell find web/src -type f 2>/dev/null) web/build.mjs web/package-lock.json
	cd web && node build.mjs
	touch $@

$(BUILD)/%.o: %.c $(wildcard common/*.h) $(wildcard services/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/migrations.c: $(sort $(wildcard migrations/*.sql)) common/migrate.h
	@mkdir -p $(dir $@)
	./common/embed-migrations.sh $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pixplane-api: $(API_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(API_OBJ) $(LIBCOMMON) $(LIBS)

$(BUILD)/services/worker/%.o: services/worker/%.c $(wildcard common/*.h) $(wildcard services/worker/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(VIPS_CFLAGS) -c $< -o $@

$(BUILD)/pixplane-worker: $(WORKER_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(WORKER_OBJ) $(LIBCOMMON) $(VIPS_LIBS) -lrdkafka $(LIBS)

$(BUILD)/pixplane-reconciler: $(REC_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(REC_OBJ) $(LIBCOMMON) $(LIBS)

$(BUILD)/pixplane-hooks: $(HOOKS_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(HOOKS_OBJ) $(LIBCOMMON) -lrdkafka $(LIBS)

$(BUILD)/pixctl-obj/%.o: pixctl/%.c $(wildcard common/*.h) $(wildcard pixctl/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/pixctl: $(PIXCTL_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(PIXCTL_OBJ) $(LIBCOMMON) $(LIBS)

$(BUILD)/pixplane-mock-kafka: minio-dev/mock-kafka.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lrdkafka -lpthread

# Unit tests link the common library and, for a service, that service's objects (not main.o).
$(BUILD)/tests/unit/common/%: tests/unit/common/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tests/unit/services/api/%: tests/unit/services/api/%.c $(API_LIBOBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iservices/api $(LDFLAGS) -o $@ $< $(API_LIBOBJ) $(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tests/unit/services/worker/%: tests/unit/services/worker/%.c $(WORKER_LIBOBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(VIPS_CFLAGS) -Iservices/worker $(LDFLAGS) -o $@ $< $(WORKER_LIBOBJ) $(LIBCOMMON) -lcmocka $(VIPS_LIBS) -lrdkafka $(LIBS)

$(BUILD)/tests/unit/services/reconciler/%: tests/unit/services/reconciler/%.c $(REC_LIBOBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iservices/reconciler $(LDFLAGS) -o $@ $< $(REC_LIBOBJ) $(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tests/unit/services/hooks/%: tests/unit/services/hooks/%.c $(HOOKS_LIBOBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iservices/hooks $(LDFLAGS) -o $@ $< $(HOOKS_LIBOBJ) $(LIBCOMMON) -lcmocka -lrdkafka $(LIBS)

$(BUILD)/tests/unit/pixctl/%: tests/unit/pixctl/%.c $(PIXCTL_LIBOBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ipixctl $(LDFLAGS) -o $@ $< $(PIXCTL_LIBOBJ) $(LIBCOMMON) -lcmocka $(LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBCOMMON) $(LIBS)

unit: all
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# Tests run on their own build: sanitized (ASan + UBSan) and with the crash-test fault
# points compiled in. `make` alone builds the release binaries in build/.
TEST_BUILD ?= build-test

test:
	$(MAKE) BUILD=$(TEST_BUILD) SAN=1 OPT=-O1 all
	BUILD=$(TEST_BUILD) ./tests/run

asan: test

integration:
	$(MAKE) BUILD=$(TEST_BUILD) SAN=1 OPT=-O1 all
	BUILD=$(TEST_BUILD) ./tests/run-integration

# ThreadSanitizer: a TSan build of everything (build-tsan) runs the integration tests whose
# code paths are threaded (SSE hub and LISTEN thread, completes on the worker pool, the
# database pool, the outbox relay, the HTTP hand-back queue). Findings fail the tests
# (conftest.assert_sanitizer_clean, and TSan's exit code 66). tests/tsan/suppressions:
# justified suppressions only.
TSAN_BUILD ?= build-tsan
TSAN_TESTS ?= test_sync.py test_upload.py test_pg_reconnect.py test_http.py test_dedup.py \
              test_imgcache.py test_abuse.py::test_stream_caps_and_shared_deltas \
              test_worker.py::test_upload_makes_all_variants \
              test_worker.py::test_kafka_down_10s_50_uploads_nothing_lost \
              test_worker.py::test_relay_retries_batches_kafka_refused \
              test_worker.py::test_relay_sent_counts_only_marked_rows \
              test_verify.py::test_false_sha256_fails_in_the_background \
              test_verify.py::test_dedup_poisoning test_verify.py::test_restart_resumes_verification \
              test_pixctl.py::test_streamed_upload_declares_the_right_hash \
              test_pixctl.py::test_streamed_upload_killed_then_resumed_has_the_right_hash \
              test_web_server.py::test_ticket_stream_sees_the_users_changes_from_a_cursor \
              test_quota.py::test_16_concurrent_creates_against_room_for_10 \
              test_quota.py::test_hook_allows_and_refuses
# tests/tsan/c11threads.c is linked into every TSan program: librdkafka's C11 threads.
tsan:
	@mkdir -p $(TSAN_BUILD)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=thread -c tests/tsan/c11threads.c \
	      -o $(TSAN_BUILD)/c11threads.o
	$(MAKE) BUILD=$(TSAN_BUILD) OPT=-O1 TEST_HOOKS=1 EXTRA_CFLAGS=-fsanitize=thread \
	        EXTRA_LDFLAGS="-fsanitize=thread $(CURDIR)/$(TSAN_BUILD)/c11threads.o" all
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan/suppressions halt_on_error=0 \
	              ignore_noninstrumented_modules=1 \
	              second_deadlock_stack=1" \
	    INTEGRATION_TESTS="$(addprefix tests/integration/,$(TSAN_TESTS))" \
	    BUILD=$(TSAN_BUILD) tests/run-integration $(TSAN_ARGS)

# clang's static analyzer over a full build (build-scan); any report fails.
scan:
	rm -rf build-scan
	scan-build -o build-scan/reports --status-bugs $(MAKE) -j2 BUILD=build-scan CC=clang all

# docs/configuration.md is generated from the programs' configuration tables.
docs: all
	BUILD=$(BUILD) docs/gen-config.sh

format:
	clang-format -i $(FORMAT_SRC)

check-format:
	clang-format --dry-run -Werror $(FORMAT_SRC)

clean:
	rm -rf build build-test build-asan build-fuzz build-tsan build-scan web/dist

# ---- Fuzzing (issue 14): libFuzzer harnesses in tests/fuzz/fuzz_<name>.c, built with clang
# into build-fuzz/ (ASan + UBSan, aborting on any report), apart from build/ and build-test/.
# The code under test is compiled with -fsanitize=fuzzer-no-link; `make fuzz` builds and runs
# every harness for FUZZ_TIME seconds each (tests/fuzz/run), `make fuzz-smoke` for 15 s each.
FUZZ_BUILD  := build-fuzz
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
               -D_GNU_SOURCE \
               -fno-strict-aliasing -Icommon -I$(FUZZ_BUILD)/gen -I/usr/include/postgresql $(FUZZ_SAN)
# A new harness tests/fuzz/fuzz_<name>.c is built and run once its name is listed here.
FUZZ_NAMES  := http json_bodies jwt cursor s3_xml sigv4 conf worker_event pixctl capture
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIBCOMMON  := $(FUZZ_BUILD)/libpixcommon.a
FUZZ_COMMON_OBJ := $(COMMON_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/gen/migrations.o
FUZZ_API_OBJ    := $(filter-out %/main.o,$(API_SRC:%.c=$(FUZZ_BUILD)/%.o))
FUZZ_WORKER_OBJ := $(FUZZ_BUILD)/services/worker/event.o $(FUZZ_BUILD)/services/worker/config.o
FUZZ_PIXCTL_OBJ := $(filter-out %/main.o,$(PIXCTL_SRC:%.c=$(FUZZ_BUILD)/%.o))
FUZZ_HDRS   := $(wildcard common/*.h services/*/*.h pixctl/*.h)
comma := ,
# The handler-level harnesses replace the request, database and log edges (tests/fuzz/api_fakes.c).
FUZZ_API_WRAP := $(addprefix -Wl$(comma)--wrap=,http_req_body http_req_header http_req_query_param \
                 http_respond http_respond_error http_respond_json http_respond_stream \
                 http_resp_header pg_acquire pg_release pg_exec pg_sqlstate pg_conn_lost log_kv \
                 s3_create_multipart s3_abort_multipart s3_list_parts s3_head_object)

.PHONY: fuzz fuzz-build fuzz-smoke
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run $(FUZZ_NAMES)

# The smoke run is CI's gate, so it is repeatable: a fixed seed walks the same inputs each time
# (new findings come from `make fuzz`, whose seed is random, and land in tests/fuzz/regressions).
fuzz-smoke: fuzz-build
	FUZZ_TIME=15 FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_ARGS="-seed=1 $(FUZZ_ARGS)" tests/fuzz/run $(FUZZ_NAMES)

$(FUZZ_BUILD)/%.o: %.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/gen/migrations.c: $(sort $(wildcard migrations/*.sql)) common/migrate.h
	@mkdir -p $(dir $@)
	./common/embed-migrations.sh $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/gen/migrations.o: $(FUZZ_BUILD)/gen/migrations.c
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIBCOMMON): $(FUZZ_COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# A harness links the objects it tests (FUZZ_OBJ, before the common library) and libFuzzer.
FUZZ_LINK = $(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) \
            $(FUZZ_WRAP) $(FUZZ_LIBCOMMON) $(LIBS)
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*_fakes.c tests/fuzz/*.h) $(FUZZ_LIBCOMMON) \
                    $(FUZZ_HDRS)
	$(FUZZ_LINK)

# fuzz_pixctl #includes pixctl/upload.c and pixctl/sync.c to reach their response handlers.
FUZZ_PIXCTL_USED := $(filter-out %/upload.o %/sync.o,$(FUZZ_PIXCTL_OBJ))
$(FUZZ_BUILD)/fuzz_json_bodies $(FUZZ_BUILD)/fuzz_cursor: $(FUZZ_API_OBJ)
$(FUZZ_BUILD)/fuzz_json_bodies $(FUZZ_BUILD)/fuzz_cursor: private FUZZ_OBJ = $(FUZZ_API_OBJ)
$(FUZZ_BUILD)/fuzz_json_bodies $(FUZZ_BUILD)/fuzz_cursor: private FUZZ_WRAP = $(FUZZ_API_WRAP)
$(FUZZ_BUILD)/fuzz_json_bodies $(FUZZ_BUILD)/fuzz_cursor: private FUZZ_CFLAGS += -Iservices/api
$(FUZZ_BUILD)/fuzz_worker_event: $(FUZZ_WORKER_OBJ)
$(FUZZ_BUILD)/fuzz_worker_event: private FUZZ_OBJ = $(FUZZ_WORKER_OBJ)
$(FUZZ_BUILD)/fuzz_worker_event: private FUZZ_CFLAGS += -Iservices/worker
$(FUZZ_BUILD)/fuzz_conf: $(FUZZ_WORKER_OBJ) $(FUZZ_BUILD)/services/api/config.o
$(FUZZ_BUILD)/fuzz_conf: private FUZZ_OBJ = $(FUZZ_WORKER_OBJ) $(FUZZ_BUILD)/services/api/config.o
$(FUZZ_BUILD)/fuzz_conf: private FUZZ_CFLAGS += -Iservices/worker -Iservices/api
# fuzz_capture: the EXIF reader with libvips and libexif (system libraries, not instrumented).
$(FUZZ_BUILD)/fuzz_capture: $(FUZZ_BUILD)/services/worker/capture.o
$(FUZZ_BUILD)/services/worker/capture.o: private FUZZ_CFLAGS += $(VIPS_CFLAGS)
$(FUZZ_BUILD)/fuzz_capture: private FUZZ_OBJ = $(FUZZ_BUILD)/services/worker/capture.o $(VIPS_LIBS)
$(FUZZ_BUILD)/fuzz_capture: private FUZZ_CFLAGS += -Iservices/worker $(VIPS_CFLAGS)
$(FUZZ_BUILD)/fuzz_pixctl: $(FUZZ_PIXCTL_USED)
$(FUZZ_BUILD)/fuzz_pixctl: private FUZZ_OBJ = $(FUZZ_PIXCTL_USED)
$(FUZZ_BUILD)/fuzz_pixctl: private FUZZ_CFLAGS += -Ipixctl
