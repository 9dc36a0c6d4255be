# mk/windows.mk - `make windows`: libmidge, midge_pub, midge_sub and the examples for 64-bit
# Windows, cross-built with Debian's mingw-w64 (scripts/install-deps platforms installs it;
# docs/windows.md). Everything goes into build/win64:
#
#   bin/midge.dll          libmidge as a DLL (exports midge_* only; winpthreads linked in)
#   lib/libmidge.dll.a     its import library (link with -lmidge against the DLL)
#   lib/libmidge.a         the static library (link it with -lws2_32 -lsecur32 -lcrypt32)
#   include/midge/midge.h  the header
#   bin/*.exe              midge_pub, midge_sub and the examples, linked statically: no DLL to
#                          carry along, they run on a bare Windows
#   test/*.exe             the test programs test/platform/test_windows.py runs under Wine
#
# and build/midge-win64.zip holds bin/, lib/, include/ and README-windows.txt for a Windows user.
#
# Differences from the Linux build, each for a reason: net/plat_win.c instead of
# net/plat_posix.c (the platform layer, net/plat.h); client/tls_schannel.c instead of
# client/tls.c (Debian's mingw-w64 has no OpenSSL: Windows' own TLS, Schannel, through secur32
# and crypt32, which every Windows has); only the net/
# files libmidge uses (the rest is the Linux broker's: epoll, listeners); no camera_pub (it
# drives a Linux V4L2 camera on the Pi). Same warnings, -Werror included.

WIN_CROSS ?= x86_64-w64-mingw32
WIN_CC := $(WIN_CROSS)-gcc
WIN_AR := $(WIN_CROSS)-ar
WIN_NM := $(WIN_CROSS)-nm
WIN := build/win64
WIN_OBJ := $(WIN)/obj
WIN_ZIP := build/midge-win64.zip

# Windows 7 and later (_WIN32_WINNT 0x0601: inet_pton, struct pollfd); mingw's own printf, so
# %zu and %lld work on every msvcrt; _POSIX_C_SOURCE for localtime_r and friends.
WIN_CPPFLAGS := -DMIDGE_VERSION=\"$(VERSION)\" -D_WIN32_WINNT=0x0601 -D__USE_MINGW_ANSI_STDIO=1 \
	-D_POSIX_C_SOURCE=200809L -Iinclude -I.
WIN_CFLAGS := -O2 -std=c11 $(WARN)
# Static winpthreads and libgcc: the .exe files and midge.dll need only Windows' own DLLs.
WIN_LDLIBS := -Wl,-Bstatic -lwinpthread -Wl,-Bdynamic -lws2_32 -lsecur32 -lcrypt32
WIN_EXE_LDFLAGS := -static -static-libgcc

WIN_LIB_SRC := $(PROTO_SRC) net/framer.c net/http.c net/ws.c net/ws_frame.c net/plat_win.c \
	$(filter-out client/tls.c,$(CLIENT_SRC)) client/tls_schannel.c
WIN_TOOLS := midge_pub midge_sub
WIN_TOOLS_COMMON_SRC := $(filter-out tools/common/os_%.c,$(wildcard tools/common/*.c)) tools/common/os_win.c
WIN_EXAMPLES := $(filter-out camera_pub,$(EXAMPLES))
WIN_TEST_SRC := $(wildcard test/platform/win/*.c)

win_objs = $(patsubst %.c,$(WIN_OBJ)/%.o,$(1))

WIN_LIBMIDGE := $(WIN)/lib/libmidge.a
WIN_DLL := $(WIN)/bin/midge.dll
WIN_IMPLIB := $(WIN)/lib/libmidge.dll.a
WIN_HEADER := $(WIN)/include/midge/midge.h
WIN_EXES := $(addprefix $(WIN)/bin/,$(addsuffix .exe,$(WIN_TOOLS) $(WIN_EXAMPLES)))
WIN_TEST_EXES := $(patsubst test/platform/win/%.c,$(WIN)/test/%.exe,$(WIN_TEST_SRC))

.PHONY: windows
windows: $(WIN_LIBMIDGE) $(WIN_DLL) $(WIN_HEADER) $(WIN_EXES) $(WIN_TEST_EXES) $(WIN_ZIP)

$(WIN_OBJ)/%.o: %.c
	@command -v $(WIN_CC) >/dev/null || { echo "make windows: $(WIN_CC) not found; scripts/install-deps platforms installs Debian's mingw-w64" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_CPPFLAGS) $(WIN_CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(WIN_OBJ) -name '*.d' 2>/dev/null)

$(WIN_LIBMIDGE): $(call win_objs,$(WIN_LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(WIN_AR) rcs $@ $^

# The DLL exports what libmidge.map exports on Linux, the public midge_* names: a .def file
# made from the objects' own symbols, so a new public function needs no list kept by hand.
$(WIN)/midge.def: $(call win_objs,$(WIN_LIB_SRC))
	@mkdir -p $(dir $@)
	{ echo EXPORTS; $(WIN_NM) -g --defined-only $^ | awk '$$2 == "T" && $$3 ~ /^midge_/ { print "\t" $$3 }' | sort -u; } > $@

$(WIN_DLL): $(call win_objs,$(WIN_LIB_SRC)) $(WIN)/midge.def
	@mkdir -p $(dir $@) $(WIN)/lib
	$(WIN_CC) -shared -static-libgcc -o $@ $(filter %.o,$^) $(WIN)/midge.def -Wl,--out-implib,$(WIN_IMPLIB) $(WIN_LDLIBS)

$(WIN_IMPLIB): $(WIN_DLL)

$(WIN_HEADER): include/midge/midge.h
	@mkdir -p $(dir $@)
	cp $< $@

$(WIN)/bin/midge_%.exe: $$(call win_objs,$$(wildcard tools/midge_$$*/*.c) $(WIN_TOOLS_COMMON_SRC)) $(WIN_LIBMIDGE)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_EXE_LDFLAGS) $^ -o $@ $(WIN_LDLIBS)

$(addprefix $(WIN)/bin/,$(addsuffix .exe,$(WIN_EXAMPLES))): $(WIN)/bin/%.exe: $(WIN_OBJ)/examples/%.o $(WIN_LIBMIDGE)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_EXE_LDFLAGS) $^ -o $@ $(WIN_LDLIBS)

$(WIN_TEST_EXES): $(WIN)/test/%.exe: $(WIN_OBJ)/test/platform/win/%.o $(WIN_LIBMIDGE)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_EXE_LDFLAGS) $^ -o $@ $(WIN_LDLIBS)

# The zip a Windows user unpacks: midge-win64/{bin,lib,include,README-windows.txt}. Python's
# zipfile (already a test dependency) rather than zip(1), one tool fewer.
$(WIN_ZIP): $(WIN_LIBMIDGE) $(WIN_DLL) $(WIN_HEADER) $(WIN_EXES) docs/README-windows.txt
	rm -rf $(WIN)/pkg && mkdir -p $(WIN)/pkg/midge-win64/bin $(WIN)/pkg/midge-win64/lib $(WIN)/pkg/midge-win64/include/midge
	cp $(WIN_EXES) $(WIN_DLL) $(WIN)/pkg/midge-win64/bin/
	cp $(WIN_LIBMIDGE) $(WIN_IMPLIB) $(WIN)/pkg/midge-win64/lib/
	cp $(WIN_HEADER) $(WIN)/pkg/midge-win64/include/midge/
	sed 's/$$/\r/' docs/README-windows.txt > $(WIN)/pkg/midge-win64/README-windows.txt
	rm -f $@ && cd $(WIN)/pkg && python3 -m zipfile -c $(abspath $@) midge-win64
