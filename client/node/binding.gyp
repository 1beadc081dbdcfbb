{
  "targets": [{
    "target_name": "nearcache_near",
    "sources": ["native/near_addon.c", "csrc/near.c", "csrc/ring.c", "csrc/units.c"],
    "include_dirs": ["csrc"],
    "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "libraries": ["-lm", "-lpthread"]
  }]
}
