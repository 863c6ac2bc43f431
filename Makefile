# pixplane build. `make` builds everything with -Werror into build/; `make test` (alias
# `make asan`) builds a sanitized test build with fault points and runs the unit and
# integration tests, bringing up the local stack if it is not up.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
OPT     ?= -O2

CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -D_GNU_SOURCE -fno-strict-aliasing \
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
VIPS_LIBS  = $(shell pkg-config --libs vips 2>/dev/null)
VIPS_CFLAGS= $(shell pkg-config --cflags vips 2>/dev/null)

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

FORMAT_SRC = $(wildcard common/*.[ch] services/*/*.[ch] pixctl/*.[ch] tests/unit/*/*.c \
             tests/unit/services/*/*.c tests/tools/*.c minio-dev/*.c)

.PHONY: all test unit integration asan clean format check-format docs
all: $(BINS) $(UNIT_BIN) $(TOOL_BIN)

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

# docs/configuration.md is generated from the programs' configuration tables.
docs: all
	BUILD=$(BUILD) docs/gen-config.sh

format:
	clang-format -i $(FORMAT_SRC)

check-format:
	clang-format --dry-run -Werror $(FORMAT_SRC)

clean:
	rm -rf build build-test build-asan
