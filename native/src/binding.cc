// ktstr_native: the thin syscall binding under src/kvm (and later src/vmm).
//
// Only syscalls live here -- no VMM logic: open/close, ioctl with a number, bigint or
// typed-array/DataView argument (views on SharedArrayBuffer included), mmap/munmap
// returning an ArrayBuffer over the mapping, the backing-store address of a
// (Shared)ArrayBuffer, eventfd, and the few signal calls needed to interrupt a thread that
// is blocked in KVM_RUN (gettid, tgkill, a no-op handler without SA_RESTART, unblock); and
// for the guest agent: sched_setattr/getattr, affinity, the thread's CPU clock, bpf(2).
//
// Errors are JS Errors made by node::ErrnoException: .code is the errno name ('EINVAL';
// libuv's name where Node's own table has none, e.g. 'E2BIG'),
// .errno the positive errno number, .syscall the call's name. Bad arguments throw
// TypeError/RangeError before any syscall is made.
//
// The module is context-aware (NODE_MODULE_INIT) and keeps no per-isolate state, so it
// loads in the main thread and in any number of worker threads. It uses the V8 API rather
// than Node-API because Node 20's Node-API has no SharedArrayBuffer accessor.

#include <node.h>
#include <uv.h>
#include <v8.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace {

using v8::ArrayBuffer;
using v8::ArrayBufferView;
using v8::BackingStore;
using v8::BigInt;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::NewStringType;
using v8::Number;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

Local<String> Str(Isolate* isolate, const char* s) {
  return String::NewFromUtf8(isolate, s, NewStringType::kNormal).ToLocalChecked();
}

void ThrowType(Isolate* isolate, const std::string& msg) {
  isolate->ThrowException(Exception::TypeError(Str(isolate, msg.c_str())));
}

void ThrowRange(Isolate* isolate, const std::string& msg) {
  isolate->ThrowException(Exception::RangeError(Str(isolate, msg.c_str())));
}

// node::ErrnoException names errnos from a table of its own that lacks a few (E2BIG, which
// bpf(2) returns for an oversized attr): then .code is '' and the message starts with ", ".
// Those get libuv's name (the one util.getSystemErrorName gives) in .code and the message.
void ThrowErrno(Isolate* isolate, int err, const char* syscall, const char* path = nullptr) {
  Local<Value> e = node::ErrnoException(isolate, err, syscall, nullptr, path);
  Local<Context> context = isolate->GetCurrentContext();
  if (e->IsObject()) {
    Local<Object> obj = e.As<Object>();
    Local<Value> code;
    if (obj->Get(context, Str(isolate, "code")).ToLocal(&code) && code->IsString() && code.As<String>()->Length() == 0) {
      char name[64];
      uv_err_name_r(uv_translate_sys_error(err), name, sizeof name);
      Local<Value> message;
      std::string text = name;
      if (obj->Get(context, Str(isolate, "message")).ToLocal(&message) && message->IsString()) {
        text += *String::Utf8Value(isolate, message);
      }
      obj->Set(context, Str(isolate, "code"), Str(isolate, name)).Check();
      obj->Set(context, Str(isolate, "message"), Str(isolate, text.c_str())).Check();
    }
  }
  isolate->ThrowException(e);
}

// An integral JS number in [lo, hi], or a bigint in that range. False (with a pending
// exception) otherwise.
bool ToInt64(Isolate* isolate, Local<Value> v, const char* what, int64_t lo, int64_t hi, int64_t* out) {
  if (v->IsBigInt()) {
    bool lossless = true;
    int64_t x = v.As<BigInt>()->Int64Value(&lossless);
    if (!lossless || x < lo || x > hi) {
      ThrowRange(isolate, std::string(what) + " is out of range");
      return false;
    }
    *out = x;
    return true;
  }
  if (!v->IsNumber()) {
    ThrowType(isolate, std::string(what) + " must be a number");
    return false;
  }
  double d = v.As<Number>()->Value();
  if (d != d) {
    ThrowType(isolate, std::string(what) + " must be an integer");
    return false;
  }
  if (d < -9007199254740992.0 || d > 9007199254740992.0) {  // beyond 2^53
    ThrowRange(isolate, std::string(what) + " is out of range");
    return false;
  }
  int64_t x = static_cast<int64_t>(d);
  if (static_cast<double>(x) != d) {
    ThrowType(isolate, std::string(what) + " must be an integer");
    return false;
  }
  if (x < lo || x > hi) {
    ThrowRange(isolate, std::string(what) + " is out of range");
    return false;
  }
  *out = x;
  return true;
}

bool ToInt(Isolate* isolate, Local<Value> v, const char* what, int* out) {
  int64_t x;
  if (!ToInt64(isolate, v, what, INT32_MIN, INT32_MAX, &x)) return false;
  *out = static_cast<int>(x);
  return true;
}

bool ToFd(Isolate* isolate, Local<Value> v, int* out) {
  int64_t x;
  if (!ToInt64(isolate, v, "fd", 0, INT32_MAX, &x)) return false;
  *out = static_cast<int>(x);
  return true;
}

// Data pointer and length of a TypedArray or DataView, over an ArrayBuffer or a
// SharedArrayBuffer.
bool ViewData(Local<Value> v, uint8_t** data, size_t* length) {
  if (!v->IsArrayBufferView()) return false;
  Local<ArrayBufferView> view = v.As<ArrayBufferView>();
  Local<ArrayBuffer> buffer = view->Buffer();  // also materialises an on-heap typed array
  *data = static_cast<uint8_t*>(buffer->Data()) + view->ByteOffset();
  *length = view->ByteLength();
  return true;
}

// open(path: string, flags: number, mode?: number) -> fd
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 2 || !args[0]->IsString()) return ThrowType(isolate, "open(path: string, flags: number, mode?: number)");
  String::Utf8Value path(isolate, args[0]);
  int flags = 0, mode = 0;
  if (!ToInt(isolate, args[1], "flags", &flags)) return;
  if (args.Length() > 2 && !args[2]->IsUndefined() && !ToInt(isolate, args[2], "mode", &mode)) return;
  int fd;
  do {
    fd = ::open(*path, flags, static_cast<mode_t>(mode));
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ThrowErrno(isolate, errno, "open", *path);
  args.GetReturnValue().Set(Integer::New(isolate, fd));
}

// close(fd) -> undefined. No retry on EINTR: on Linux the fd is released either way.
void Close(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  if (!ToFd(isolate, args[0], &fd)) return;
  if (::close(fd) < 0 && errno != EINTR) ThrowErrno(isolate, errno, "close");
}

// ioctl(fd, request, arg?) -> int. arg: undefined (0), number, bigint, or a TypedArray /
// DataView (the view's data pointer is passed). For requests encoded with _IOC and a
// direction, a view must be at least the encoded size long. `restart`: an ioctl interrupted
// by a signal (EINTR) is issued again, as SA_RESTART would; ioctlInterruptible reports it.
void IoctlCall(const FunctionCallbackInfo<Value>& args, bool restart) {
  Isolate* isolate = args.GetIsolate();
  int fd;
  if (!ToFd(isolate, args[0], &fd)) return;
  int64_t req64;
  if (!ToInt64(isolate, args[1], "request", 0, UINT32_MAX, &req64)) return;
  unsigned long request = static_cast<unsigned long>(req64);
  unsigned long arg = 0;
  Local<Value> a = args[2];
  if (a->IsUndefined()) {
    arg = 0;
  } else if (a->IsArrayBufferView()) {
    uint8_t* data = nullptr;
    size_t length = 0;
    ViewData(a, &data, &length);
    unsigned dir = (request >> 30) & 3;
    size_t size = (request >> 16) & 0x3fff;
    if (dir != 0 && length < size) {
      return ThrowRange(isolate, "ioctl: the argument view has " + std::to_string(length) +
                                     " bytes; the request encodes " + std::to_string(size));
    }
    arg = reinterpret_cast<unsigned long>(data);
  } else if (a->IsBigInt()) {
    bool lossless = true;
    uint64_t x = a.As<BigInt>()->Uint64Value(&lossless);
    if (!lossless) return ThrowRange(isolate, "ioctl: bigint argument is out of range");
    arg = static_cast<unsigned long>(x);
  } else if (a->IsNumber()) {
    int64_t x;
    if (!ToInt64(isolate, a, "ioctl argument", -(int64_t{1} << 53), int64_t{1} << 53, &x)) return;
    arg = static_cast<unsigned long>(x);
  } else {
    return ThrowType(isolate, "ioctl: arg must be a number, a bigint, a TypedArray or a DataView");
  }
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR && restart);
  if (r < 0) return ThrowErrno(isolate, errno, "ioctl");
  args.GetReturnValue().Set(Integer::New(isolate, r));
}

void Ioctl(const FunctionCallbackInfo<Value>& args) { IoctlCall(args, true); }
void IoctlInterruptible(const FunctionCallbackInfo<Value>& args) { IoctlCall(args, false); }

void Unmap(void* data, size_t length, void* /*deleter_data*/) {
  if (data != nullptr && length > 0) ::munmap(data, length);
}

// mmap(fd, length, prot, flags, offset) -> ArrayBuffer over the mapping (fd -1 with
// MAP_ANONYMOUS). The buffer owns
// the mapping: it is unmapped when the buffer is collected (or its isolate, e.g. a worker,
// goes away), or at once by munmap(buffer).
void Mmap(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int prot, flags;
  int64_t fd, length, offset;
  if (!ToInt64(isolate, args[0], "fd", -1, INT32_MAX, &fd)) return;
  if (!ToInt64(isolate, args[1], "length", 1, int64_t{1} << 47, &length)) return;
  if (!ToInt(isolate, args[2], "prot", &prot)) return;
  if (!ToInt(isolate, args[3], "flags", &flags)) return;
  if (!ToInt64(isolate, args[4], "offset", 0, INT64_MAX, &offset)) return;
  void* p = ::mmap(nullptr, static_cast<size_t>(length), prot, flags, static_cast<int>(fd), static_cast<off_t>(offset));
  if (p == MAP_FAILED) return ThrowErrno(isolate, errno, "mmap");
  std::unique_ptr<BackingStore> store =
      ArrayBuffer::NewBackingStore(p, static_cast<size_t>(length), Unmap, nullptr);
  args.GetReturnValue().Set(ArrayBuffer::New(isolate, std::move(store)));
}

// munmap(buffer: ArrayBuffer from mmap) -> undefined. Detaches the buffer (its length and
// its views' lengths become 0); the mapping goes with the last reference to the backing
// store, so it is never unmapped twice.
void Munmap(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsArrayBuffer()) return ThrowType(isolate, "munmap(buffer): buffer must be an ArrayBuffer returned by mmap");
  Local<ArrayBuffer> ab = args[0].As<ArrayBuffer>();
  if (ab->WasDetached()) return;
  if (!ab->IsDetachable()) return ThrowType(isolate, "munmap: buffer is not detachable");
  std::shared_ptr<BackingStore> store = ab->GetBackingStore();
  if (ab->Detach(Local<Value>()).IsNothing()) return;
  store.reset();
}

// sharedBufferAddress(buffer: SharedArrayBuffer | ArrayBuffer) -> bigint
void SharedBufferAddress(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  void* data;
  if (args[0]->IsSharedArrayBuffer()) {
    data = args[0].As<SharedArrayBuffer>()->GetBackingStore()->Data();
  } else if (args[0]->IsArrayBuffer()) {
    data = args[0].As<ArrayBuffer>()->GetBackingStore()->Data();
  } else {
    return ThrowType(isolate, "sharedBufferAddress(buffer): buffer must be a SharedArrayBuffer or an ArrayBuffer");
  }
  args.GetReturnValue().Set(BigInt::NewFromUnsigned(isolate, reinterpret_cast<uint64_t>(data)));
}

// madvise(buffer: SharedArrayBuffer | ArrayBuffer, offset, length, advice) -> undefined.
// The range must lie inside the buffer; it is widened to whole pages (the kernel wants a
// page-aligned start).
void Madvise(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::shared_ptr<BackingStore> store;
  if (args[0]->IsSharedArrayBuffer()) store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  else if (args[0]->IsArrayBuffer()) store = args[0].As<ArrayBuffer>()->GetBackingStore();
  else return ThrowType(isolate, "madvise(buffer, offset, length, advice): buffer must be a SharedArrayBuffer or an ArrayBuffer");
  int64_t offset, length;
  int advice;
  const int64_t size = static_cast<int64_t>(store->ByteLength());
  if (!ToInt64(isolate, args[1], "offset", 0, size, &offset)) return;
  if (!ToInt64(isolate, args[2], "length", 0, size - offset, &length)) return;
  if (!ToInt(isolate, args[3], "advice", &advice)) return;
  if (length == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t start = reinterpret_cast<uintptr_t>(store->Data()) + static_cast<uintptr_t>(offset);
  uintptr_t end = start + static_cast<uintptr_t>(length);
  start &= ~(page - 1);
  if (::madvise(reinterpret_cast<void*>(start), end - start, advice) < 0) return ThrowErrno(isolate, errno, "madvise");
}

// rdtsc() -> bigint: this CPU's time-stamp counter (x86-64 only; 0n elsewhere). The test host
// uses it to measure the TSC rate that QEMU's TCG passes through to L1.
void Rdtsc(const FunctionCallbackInfo<Value>& args) {
#if defined(__x86_64__)
  uint64_t t = __rdtsc();
#else
  uint64_t t = 0;
#endif
  args.GetReturnValue().Set(BigInt::NewFromUnsigned(args.GetIsolate(), t));
}

// eventfd(initval, flags) -> fd
void Eventfd(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int64_t initval;
  int flags;
  if (!ToInt64(isolate, args[0], "initval", 0, UINT32_MAX, &initval)) return;
  if (!ToInt(isolate, args[1], "flags", &flags)) return;
  int fd = ::eventfd(static_cast<unsigned>(initval), flags);
  if (fd < 0) return ThrowErrno(isolate, errno, "eventfd");
  args.GetReturnValue().Set(Integer::New(isolate, fd));
}

// gettid() -> the calling thread's kernel thread id
void Gettid(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(Integer::New(args.GetIsolate(), static_cast<int>(::syscall(SYS_gettid))));
}

// tgkill(tid, signal) -> undefined: sends signal to one thread of this process.
void Tgkill(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int tid, sig;
  if (!ToInt(isolate, args[0], "tid", &tid)) return;
  if (!ToInt(isolate, args[1], "signal", &sig)) return;
  if (::syscall(SYS_tgkill, static_cast<int>(::getpid()), tid, sig) < 0) ThrowErrno(isolate, errno, "tgkill");
}

void NoopHandler(int) {}

// setNoopSignalHandler(signal) -> undefined: process-wide handler that does nothing and is
// installed without SA_RESTART, so a blocking syscall (KVM_RUN) on the thread that receives
// the signal returns EINTR instead of the process dying. Idempotent.
void SetNoopSignalHandler(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int sig;
  if (!ToInt(isolate, args[0], "signal", &sig)) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = NoopHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  if (::sigaction(sig, &sa, nullptr) < 0) ThrowErrno(isolate, errno, "sigaction");
}

// unblockSignal(signal) -> undefined: removes signal from the calling thread's mask.
void UnblockSignal(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int sig;
  if (!ToInt(isolate, args[0], "signal", &sig)) return;
  sigset_t set;
  sigemptyset(&set);
  if (sigaddset(&set, sig) < 0) return ThrowErrno(isolate, errno, "sigaddset");
  int err = pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (err != 0) ThrowErrno(isolate, err, "pthread_sigmask");
}

// --- what the guest agent needs (scheduling policy, affinity, thread CPU time, bpf) ---

// SCHED_EXT is in the uapi headers of sched_ext kernels only (linux/sched.h, 6.12+).
#ifndef SCHED_EXT
#define SCHED_EXT 7
#endif

// struct sched_attr as sched_setattr(2) takes it (SCHED_ATTR_SIZE_VER1: 56 bytes).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};
static_assert(sizeof(SchedAttr) == 56, "sched_attr VER1 is 56 bytes");

// schedSetattr(tid, policy, nice?) -> undefined: sched_setattr(2) (tid 0 = calling thread).
// The policy number is passed as is: SCHED_EXT (7) exists only on sched_ext kernels.
void SchedSetattr(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int tid, policy, nice = 0;
  if (!ToInt(isolate, args[0], "tid", &tid)) return;
  if (!ToInt(isolate, args[1], "policy", &policy)) return;
  if (args.Length() > 2 && !args[2]->IsUndefined() && !ToInt(isolate, args[2], "nice", &nice)) return;
  if (policy < 0 || nice < -20 || nice > 19) return ThrowRange(isolate, "policy must be >= 0 and nice in -20..19");
  SchedAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.sched_policy = static_cast<uint32_t>(policy);
  attr.sched_nice = nice;
  if (::syscall(SYS_sched_setattr, tid, &attr, 0) < 0) ThrowErrno(isolate, errno, "sched_setattr");
}

// schedGetPolicy(tid) -> the thread's scheduling policy number (sched_getattr(2)).
void SchedGetPolicy(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int tid;
  if (!ToInt(isolate, args[0], "tid", &tid)) return;
  SchedAttr attr;
  memset(&attr, 0, sizeof attr);
  if (::syscall(SYS_sched_getattr, tid, &attr, sizeof attr, 0) < 0) return ThrowErrno(isolate, errno, "sched_getattr");
  args.GetReturnValue().Set(Integer::NewFromUnsigned(isolate, attr.sched_policy));
}

// schedSetaffinity(tid, cpus: number[]) -> undefined
void SchedSetaffinity(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int tid;
  if (!ToInt(isolate, args[0], "tid", &tid)) return;
  if (args.Length() < 2 || !args[1]->IsArray()) return ThrowType(isolate, "schedSetaffinity(tid: number, cpus: number[])");
  Local<v8::Array> list = args[1].As<v8::Array>();
  Local<Context> context = isolate->GetCurrentContext();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < list->Length(); i++) {
    int cpu;
    if (!ToInt(isolate, list->Get(context, i).ToLocalChecked(), "cpu", &cpu)) return;
    if (cpu < 0 || cpu >= CPU_SETSIZE) return ThrowRange(isolate, "cpu out of range");
    CPU_SET(cpu, &set);
  }
  if (::sched_setaffinity(tid, sizeof set, &set) < 0) ThrowErrno(isolate, errno, "sched_setaffinity");
}

// schedGetaffinity(tid) -> number[]
void SchedGetaffinity(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int tid;
  if (!ToInt(isolate, args[0], "tid", &tid)) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(tid, sizeof set, &set) < 0) return ThrowErrno(isolate, errno, "sched_getaffinity");
  Local<Context> context = isolate->GetCurrentContext();
  Local<v8::Array> out = v8::Array::New(isolate);
  uint32_t n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) out->Set(context, n++, Integer::New(isolate, cpu)).Check();
  }
  args.GetReturnValue().Set(out);
}

// threadCpuTimeNs() -> bigint: CLOCK_THREAD_CPUTIME_ID of the calling thread.
void ThreadCpuTimeNs(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  struct timespec ts;
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return ThrowErrno(isolate, errno, "clock_gettime");
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  args.GetReturnValue().Set(BigInt::NewFromUnsigned(isolate, ns));
}

// setRealtimeMs(ms) -> undefined: clock_settime(CLOCK_REALTIME) to `ms` since the epoch (ms
// precision); the guest agent sets a restored guest's wall clock with it.
void SetRealtimeMs(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int64_t ms;
  if (!ToInt64(isolate, args[0], "ms", 0, INT64_C(1) << 50, &ms)) return;
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
  if (::clock_settime(CLOCK_REALTIME, &ts) < 0) ThrowErrno(isolate, errno, "clock_settime");
}

// bpf(cmd, attr: TypedArray | DataView) -> int: bpf(2) with the view's data and byte length.
void Bpf(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int cmd;
  if (!ToInt(isolate, args[0], "cmd", &cmd)) return;
  uint8_t* data = nullptr;
  size_t length = 0;
  if (args.Length() < 2 || !ViewData(args[1], &data, &length)) return ThrowType(isolate, "bpf(cmd: number, attr: TypedArray | DataView)");
  long r;
  do {
    r = ::syscall(SYS_bpf, cmd, data, static_cast<unsigned>(length));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(isolate, errno, "bpf");
  args.GetReturnValue().Set(Integer::New(isolate, static_cast<int>(r)));
}

void SetMethod(Isolate* isolate, Local<Context> context, Local<Object> target, const char* name,
               v8::FunctionCallback fn) {
  Local<v8::Function> f = FunctionTemplate::New(isolate, fn)->GetFunction(context).ToLocalChecked();
  Local<String> key = Str(isolate, name);
  f->SetName(key);
  target->Set(context, key, f).Check();
}

void SetConstant(Isolate* isolate, Local<Context> context, Local<Object> target, const char* name, int64_t value) {
  target->Set(context, Str(isolate, name), Number::New(isolate, static_cast<double>(value))).Check();
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  SetMethod(isolate, context, exports, "open", Open);
  SetMethod(isolate, context, exports, "close", Close);
  SetMethod(isolate, context, exports, "ioctl", Ioctl);
  SetMethod(isolate, context, exports, "ioctlInterruptible", IoctlInterruptible);
  SetMethod(isolate, context, exports, "mmap", Mmap);
  SetMethod(isolate, context, exports, "munmap", Munmap);
  SetMethod(isolate, context, exports, "sharedBufferAddress", SharedBufferAddress);
  SetMethod(isolate, context, exports, "eventfd", Eventfd);
  SetMethod(isolate, context, exports, "madvise", Madvise);
  SetMethod(isolate, context, exports, "rdtsc", Rdtsc);
  SetMethod(isolate, context, exports, "gettid", Gettid);
  SetMethod(isolate, context, exports, "tgkill", Tgkill);
  SetMethod(isolate, context, exports, "setNoopSignalHandler", SetNoopSignalHandler);
  SetMethod(isolate, context, exports, "unblockSignal", UnblockSignal);
  SetMethod(isolate, context, exports, "schedSetattr", SchedSetattr);
  SetMethod(isolate, context, exports, "schedGetPolicy", SchedGetPolicy);
  SetMethod(isolate, context, exports, "schedSetaffinity", SchedSetaffinity);
  SetMethod(isolate, context, exports, "schedGetaffinity", SchedGetaffinity);
  SetMethod(isolate, context, exports, "threadCpuTimeNs", ThreadCpuTimeNs);
  SetMethod(isolate, context, exports, "bpf", Bpf);
  SetMethod(isolate, context, exports, "setRealtimeMs", SetRealtimeMs);

  Local<Object> c = Object::New(isolate);
  SetConstant(isolate, context, c, "O_RDONLY", O_RDONLY);
  SetConstant(isolate, context, c, "O_WRONLY", O_WRONLY);
  SetConstant(isolate, context, c, "O_RDWR", O_RDWR);
  SetConstant(isolate, context, c, "O_CLOEXEC", O_CLOEXEC);
  SetConstant(isolate, context, c, "O_NONBLOCK", O_NONBLOCK);
  SetConstant(isolate, context, c, "PROT_NONE", PROT_NONE);
  SetConstant(isolate, context, c, "PROT_READ", PROT_READ);
  SetConstant(isolate, context, c, "PROT_WRITE", PROT_WRITE);
  SetConstant(isolate, context, c, "MAP_SHARED", MAP_SHARED);
  SetConstant(isolate, context, c, "MAP_PRIVATE", MAP_PRIVATE);
  SetConstant(isolate, context, c, "MAP_ANONYMOUS", MAP_ANONYMOUS);
  SetConstant(isolate, context, c, "MADV_HUGEPAGE", MADV_HUGEPAGE);
  SetConstant(isolate, context, c, "MADV_DONTNEED", MADV_DONTNEED);
  SetConstant(isolate, context, c, "EFD_CLOEXEC", EFD_CLOEXEC);
  SetConstant(isolate, context, c, "EFD_NONBLOCK", EFD_NONBLOCK);
  SetConstant(isolate, context, c, "EFD_SEMAPHORE", EFD_SEMAPHORE);
  SetConstant(isolate, context, c, "SIGRTMIN", SIGRTMIN);
  SetConstant(isolate, context, c, "SIGRTMAX", SIGRTMAX);
  SetConstant(isolate, context, c, "PAGE_SIZE", ::sysconf(_SC_PAGESIZE));
  SetConstant(isolate, context, c, "SCHED_OTHER", SCHED_OTHER);
  SetConstant(isolate, context, c, "SCHED_EXT", SCHED_EXT);
  exports->Set(context, Str(isolate, "constants"), c).Check();
}
