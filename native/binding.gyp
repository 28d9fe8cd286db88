# node-gyp build of the thin syscall binding (see src/binding.cc). Built by the package's
# "install" script: `node-gyp rebuild -C native` -> native/build/Release/ktstr_native.node.
{
  "targets": [
    {
      "target_name": "ktstr_native",
      "sources": ["src/binding.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "conditions": [
        ["OS!='linux'", {"type": "none"}]
      ]
    }
  ]
}
