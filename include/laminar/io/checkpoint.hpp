// Checkpoint files: a flat list of named, typed entries (text, raw bytes, arrays
// of f32/f64/i64/u64) sealed by a CRC-32, written atomically and read whole.
// Weights, optimizer state, schedules and RNG positions are all stored as entries.
//
// Layout (all integers little-endian):
//   "LAMINAR-CHECKPOINT\n"                 19 bytes of magic
//   u32 format version                      1
//   u64 entry count
//   per entry: u32 name length, name bytes, u32 EntryType, u64 payload bytes, payload
//   u32 CRC-32 (zlib's crc32) of every byte before it
// Array payloads are the elements back to back, with no padding or alignment.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <functional>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "atomic_file.hpp"

namespace laminar::io {

static_assert(std::endian::native == std::endian::little,
              "CHECKPOINT_FORMAT_IS_LITTLE_ENDIAN: this host is big-endian and the checkpoint "
              "reader and writer copy integers and floats as they lie in memory");

enum class EntryType : std::uint32_t { bytes, text, f32, f64, i64, u64 };

inline constexpr std::string_view checkpoint_magic = "LAMINAR-CHECKPOINT\n";
inline constexpr std::uint32_t checkpoint_version = 1;

inline std::string type_name(EntryType type) {
  switch (type) {
    case EntryType::bytes: return "bytes";
    case EntryType::text: return "text";
    case EntryType::f32: return "f32";
    case EntryType::f64: return "f64";
    case EntryType::i64: return "i64";
    case EntryType::u64: return "u64";
  }
  return "unknown type " + std::to_string(std::uint32_t(type));
}

template <class T>
inline constexpr bool is_array_element = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                         std::is_same_v<T, std::int64_t> ||
                                         std::is_same_v<T, std::uint64_t>;

// The entry type that stores arrays of T.
template <class T>
constexpr EntryType array_type() {
  static_assert(is_array_element<T>,
                "CHECKPOINT_ARRAYS_HOLD_FLOAT_DOUBLE_INT64_OR_UINT64: no entry type stores this "
                "element type");
  if constexpr (std::is_same_v<T, float>) return EntryType::f32;
  else if constexpr (std::is_same_v<T, double>) return EntryType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return EntryType::i64;
  else return EntryType::u64;
}

namespace detail {

// Bytes per element of an array type, 1 for text and bytes.
inline std::size_t element_bytes(EntryType type) {
  switch (type) {
    case EntryType::f32: return 4;
    case EntryType::f64:
    case EntryType::i64:
    case EntryType::u64: return 8;
    case EntryType::bytes:
    case EntryType::text: return 1;
  }
  return 0;
}

inline bool known_type(std::uint32_t type) { return type <= std::uint32_t(EntryType::u64); }

template <class Integer>
void append_integer(std::string& out, Integer value) {
  char raw[sizeof(Integer)];
  std::memcpy(raw, &value, sizeof(Integer));
  out.append(raw, sizeof(Integer));
}

// zlib's crc32 takes a 32-bit length, so long inputs go through in pieces.
inline std::uint32_t crc32_of(std::string_view bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  constexpr std::size_t piece = std::size_t(1) << 30;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    const std::size_t n = std::min(piece, bytes.size() - at);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + at), uInt(n));
  }
  return std::uint32_t(crc);
}

inline std::string hex32(std::uint32_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += digits[(value >> shift) & 0xF];
  return s;
}

}  // namespace detail

class CheckpointWriter {
 public:
  void add_text(std::string name, std::string_view text) {
    add(std::move(name), EntryType::text, text);
  }
  void add_bytes(std::string name, std::string_view bytes) {
    add(std::move(name), EntryType::bytes, bytes);
  }
  template <class T>
  void add_array(std::string name, const T* data, std::size_t count) {
    constexpr EntryType type = array_type<T>();
    add(std::move(name), type,
        std::string_view(reinterpret_cast<const char*>(data), count * sizeof(T)));
  }
  template <class T>
  void add_array(std::string name, const std::vector<T>& values) {
    add_array(std::move(name), values.data(), values.size());
  }
  // Scalars are one-element arrays, so array<double>(name) reads them too.
  void add_scalar(std::string name, double value) { add_array(std::move(name), &value, 1); }
  void add_scalar(std::string name, std::int64_t value) { add_array(std::move(name), &value, 1); }

  std::string serialize() const {
    std::size_t total = checkpoint_magic.size() + 4 + 8 + 4;
    for (const Entry& e : entries_) total += 4 + e.name.size() + 4 + 8 + e.payload.size();
    std::string out;
    out.reserve(total);
    out.append(checkpoint_magic);
    detail::append_integer(out, checkpoint_version);
    detail::append_integer(out, std::uint64_t(entries_.size()));
    for (const Entry& e : entries_) {
      detail::append_integer(out, std::uint32_t(e.name.size()));
      out.append(e.name);
      detail::append_integer(out, std::uint32_t(e.type));
      detail::append_integer(out, std::uint64_t(e.payload.size()));
      out.append(e.payload);
    }
    detail::append_integer(out, detail::crc32_of(out));
    return out;
  }

  // Atomic: a failure leaves any existing file at path as it was.
  void save(const std::string& path) const { write_atomically(path, serialize()); }

 private:
  struct Entry {
    std::string name;
    EntryType type;
    std::string payload;
  };

  void add(std::string name, EntryType type, std::string_view payload) {
    if (name.empty()) throw Error("a checkpoint entry needs a non-empty name");
    if (name.size() > std::numeric_limits<std::uint32_t>::max())
      throw Error("checkpoint entry name of " + std::to_string(name.size()) +
                  " bytes is longer than the format's 4 GiB limit");
    if (!names_.insert(name).second)
      throw Error("checkpoint entry \"" + name + "\" is added twice; entry names must be unique");
    entries_.push_back({std::move(name), type, std::string(payload)});
  }

  std::vector<Entry> entries_;
  std::unordered_set<std::string> names_;
};

class CheckpointReader {
 public:
  static CheckpointReader load(const std::string& path) { return parse(read_file(path), path); }

  // Checks, in this order: magic, version, that every length fits in what
  // remains (truncation), the checksum, trailing bytes, then the entries' names
  // and types. A length is always compared with the bytes left before it is used.
  static CheckpointReader parse(std::string bytes, std::string source) {
    CheckpointReader r;
    r.bytes_ = std::move(bytes);
    r.source_ = std::move(source);
    r.index();
    return r;
  }

  const std::string& source() const { return source_; }

  bool has(std::string_view name) const { return find(name) != nullptr; }

  // In file order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) out.push_back(e.name);
    return out;
  }

  EntryType type(std::string_view name) const { return entry(name).type; }

  // Elements of an array entry; bytes of a text or bytes entry.
  std::size_t count(std::string_view name) const {
    const Entry& e = entry(name);
    return e.size / detail::element_bytes(e.type);
  }

  std::string text(std::string_view name) const {
    const Entry& e = typed_entry(name, EntryType::text);
    return bytes_.substr(e.offset, e.size);
  }

  // A view into this reader's buffer, valid while the reader lives.
  std::string_view bytes(std::string_view name) const {
    const Entry& e = typed_entry(name, EntryType::bytes);
    return std::string_view(bytes_).substr(e.offset, e.size);
  }

  template <class T>
  std::vector<T> array(std::string_view name) const {
    const Entry& e = typed_entry(name, array_type<T>());
    std::vector<T> out(e.size / sizeof(T));
    if (e.size) std::memcpy(out.data(), bytes_.data() + e.offset, e.size);
    return out;
  }

  template <class T>
  void read_array(std::string_view name, T* out, std::size_t count) const {
    const Entry& e = typed_entry(name, array_type<T>());
    const std::size_t stored = e.size / sizeof(T);
    if (stored != count)
      throw Error(source_ + ": checkpoint entry \"" + e.name + "\" holds " + std::to_string(stored) +
                  " " + type_name(e.type) + " values but " + std::to_string(count) +
                  " were asked for");
    if (e.size) std::memcpy(out, bytes_.data() + e.offset, e.size);
  }

  double scalar_f64(std::string_view name) const { return scalar<double>(name); }
  std::int64_t scalar_i64(std::string_view name) const { return scalar<std::int64_t>(name); }

 private:
  struct Entry {
    std::string name;
    EntryType type;
    std::size_t offset, size;  // of the payload in bytes_
  };

  CheckpointReader() = default;

  [[noreturn]] void fail(const std::string& sentence) const { throw Error(source_ + ": " + sentence); }

  void index() {
    const std::size_t total = bytes_.size();
    std::size_t at = 0;
    std::uint64_t count = 0, current = 0;  // current: the entry being read, 0 in the header
    const auto remaining = [&] { return total - at; };
    const auto need = [&](std::uint64_t n, const char* what) {
      if (n <= remaining()) return;
      const std::string where =
          current == 0 ? std::string("in its ") + what
                       : "at entry " + std::to_string(current) + " of " + std::to_string(count) +
                             " (its " + what + ")";
      fail("checkpoint is truncated " + where + ": expected " + std::to_string(n) +
           " more bytes, only " + std::to_string(remaining()) + " remain");
    };
    const auto integer = [&]<class Integer>(Integer, const char* what) {
      need(sizeof(Integer), what);
      Integer value;
      std::memcpy(&value, bytes_.data() + at, sizeof(Integer));
      at += sizeof(Integer);
      return value;
    };

    const std::size_t magic_seen = std::min(total, checkpoint_magic.size());
    if (std::string_view(bytes_).substr(0, magic_seen) != checkpoint_magic.substr(0, magic_seen))
      fail("not a laminar checkpoint (the file does not start with \"LAMINAR-CHECKPOINT\")");
    need(checkpoint_magic.size(), "magic");
    at = checkpoint_magic.size();

    const auto version = integer(std::uint32_t{}, "format version");
    if (version != checkpoint_version)
      fail("unsupported checkpoint format version " + std::to_string(version) +
           "; this build reads version " + std::to_string(checkpoint_version));
    count = integer(std::uint64_t{}, "entry count");

    struct Raw {
      std::uint32_t type;
      std::size_t name_offset, name_size, offset, size;
    };
    std::vector<Raw> raw;
    // Each entry takes at least 16 bytes, so a corrupted count cannot make this reserve huge.
    raw.reserve(std::size_t(std::min<std::uint64_t>(count, remaining() / 16)));
    for (current = 1; current <= count; ++current) {
      Raw e;
      e.name_size = integer(std::uint32_t{}, "name length");
      need(e.name_size, "name");
      e.name_offset = at;
      at += e.name_size;
      e.type = integer(std::uint32_t{}, "type");
      const auto size = integer(std::uint64_t{}, "payload length");
      need(size, "payload");
      e.offset = at;
      e.size = std::size_t(size);
      at += e.size;
      raw.push_back(e);
    }
    current = 0;

    const std::size_t sealed = at;
    const auto stored = integer(std::uint32_t{}, "CRC-32 after the last entry");
    const std::uint32_t computed = detail::crc32_of(std::string_view(bytes_).substr(0, sealed));
    if (stored != computed)
      fail("checkpoint is corrupted: CRC-32 stored " + detail::hex32(stored) + ", computed " +
           detail::hex32(computed));
    if (at != total)
      fail("checkpoint has " + std::to_string(total - at) +
           " trailing bytes after its CRC-32");

    entries_.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const Raw& e = raw[i];
      std::string name = bytes_.substr(e.name_offset, e.name_size);
      const std::string which = "checkpoint entry " + std::to_string(i + 1);
      if (name.empty()) fail(which + " has an empty name");
      if (!detail::known_type(e.type))
        fail(which + " (\"" + name + "\") has unknown type " + std::to_string(e.type));
      const EntryType type = EntryType(e.type);
      if (e.size % detail::element_bytes(type) != 0)
        fail(which + " (\"" + name + "\") has " + std::to_string(e.size) +
             " payload bytes, not a whole number of " + type_name(type) + " values");
      if (!positions_.emplace(name, entries_.size()).second)
        fail(which + " repeats the name \"" + name + "\"");
      entries_.push_back({std::move(name), type, e.offset, e.size});
    }
  }

  const Entry* find(std::string_view name) const {
    const auto it = positions_.find(name);
    return it == positions_.end() ? nullptr : &entries_[it->second];
  }

  const Entry& entry(std::string_view name) const {
    if (const Entry* e = find(name)) return *e;
    std::string present;
    for (const Entry& e : entries_) present += (present.empty() ? "\"" : ", \"") + e.name + "\"";
    fail("checkpoint has no entry \"" + std::string(name) + "\"; it holds " +
         (present.empty() ? std::string("no entries") : present));
  }

  const Entry& typed_entry(std::string_view name, EntryType expected) const {
    const Entry& e = entry(name);
    if (e.type != expected)
      fail("checkpoint entry \"" + e.name + "\" is " + type_name(e.type) + ", not " +
           type_name(expected));
    return e;
  }

  template <class T>
  T scalar(std::string_view name) const {
    T value;
    read_array(name, &value, 1);
    return value;
  }

  std::string bytes_, source_;
  std::vector<Entry> entries_;
  // Transparent, so lookups by string_view do not allocate.
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> positions_;
};

}  // namespace laminar::io
