// A POSIX shared-memory mapping (shm_open + mmap) with RAII. Used by all three programs, so it
// does not depend on DPDK. Errors are returned as text, never thrown: the dataplane includes it.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace ilb::abi {

class ShmRegion {
 public:
  enum class Mode { kReadOnly, kReadWrite, kCreate };

  ShmRegion() = default;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ShmRegion(ShmRegion&& o) noexcept { *this = std::move(o); }
  ShmRegion& operator=(ShmRegion&& o) noexcept {
    if (this != &o) {
      unmap();
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
      inode_ = std::exchange(o.inode_, 0);
      name_ = std::move(o.name_);
    }
    return *this;
  }
  ~ShmRegion() { unmap(); }

  // Maps the object `name`. kCreate creates it if missing and sizes it to `size` (existing
  // contents are kept when the size matches, so a restarted writer can recover its last state);
  // the other modes map an existing object whole and ignore `size`. Returns false with `error` set.
  bool map(const std::string& name, Mode mode, uint64_t size, std::string& error) {
    unmap();
    int flags = mode == Mode::kReadOnly ? O_RDONLY : O_RDWR;
    if (mode == Mode::kCreate) flags |= O_CREAT;
    int fd = shm_open(name.c_str(), flags, 0600);
    if (fd < 0) {
      error = "shm_open " + name + ": " + std::strerror(errno);
      return false;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      error = "fstat " + name + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    uint64_t map_size = static_cast<uint64_t>(st.st_size);
    if (mode == Mode::kCreate && map_size == 0) {
      // Just created (an empty object cannot be mapped by anyone): size it in place.
      if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
        error = "ftruncate " + name + ": " + std::strerror(errno);
        close(fd);
        return false;
      }
      map_size = size;
    } else if (mode == Mode::kCreate && map_size != size) {
      // Never resize a used object in place: a process that has it mapped would fault on the
      // pages that vanish. A wrong-sized object is replaced, and its readers see a new inode.
      close(fd);
      shm_unlink(name.c_str());
      fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
      if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0 || fstat(fd, &st) != 0) {
        error = "create " + name + ": " + std::strerror(errno);
        if (fd >= 0) close(fd);
        return false;
      }
      map_size = size;
    }
    if (map_size == 0) {
      error = name + " is empty (its writer has not initialised it)";
      close(fd);
      return false;
    }
    int prot = mode == Mode::kReadOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    void* p = mmap(nullptr, map_size, prot, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      error = "mmap " + name + ": " + std::strerror(errno);
      return false;
    }
    base_ = static_cast<uint8_t*>(p);
    size_ = map_size;
    inode_ = static_cast<uint64_t>(st.st_ino);
    name_ = name;
    return true;
  }

  void unmap() {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
  }

  bool mapped() const { return base_ != nullptr; }
  uint8_t* data() const { return base_; }
  // Identity of the mapped object; compare with current_inode() to see whether the name now
  // refers to a different object (its writer re-created it).
  uint64_t inode() const { return inode_; }
  static uint64_t current_inode(const std::string& name) {
    int fd = shm_open(name.c_str(), O_RDONLY, 0);
    if (fd < 0) return 0;
    struct stat st {};
    const bool ok = fstat(fd, &st) == 0;
    close(fd);
    return ok ? static_cast<uint64_t>(st.st_ino) : 0;
  }
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  template <typename T>
  T* at(uint64_t offset) const {
    return reinterpret_cast<T*>(base_ + offset);
  }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t inode_ = 0;
  std::string name_;
};

}  // namespace ilb::abi
