// Whole-file reads shared by the binary readers in data/: one read for a plain
// file, chunked inflation for a gzip one (detected by its magic bytes, not its
// name), and errors that name the file.
#pragma once

#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"

namespace laminar::data {

namespace detail {

// Messages say whether a size is the file's or its decompressed stream's.
inline std::string size_phrase(std::size_t size, bool gzip) {
  return std::string(gzip ? "decompressed size " : "size ") + std::to_string(size) + " bytes";
}

// A file's contents, inflated when the file is gzip-compressed.
struct FileBytes {
  std::vector<std::uint8_t> bytes;
  bool gzip = false;

  std::string size_phrase() const { return detail::size_phrase(bytes.size(), gzip); }
};

inline void check_readable_file(const std::filesystem::path& file) {
  std::error_code error;
  const auto status = std::filesystem::status(file, error);
  if (!std::filesystem::exists(status)) throw Error(file.string() + ": no such file");
  if (std::filesystem::is_directory(status))
    throw Error(file.string() + ": is a directory, not a data file");
}

inline std::ifstream open_for_reading(const std::filesystem::path& file) {
  check_readable_file(file);
  errno = 0;
  std::ifstream stream(file, std::ios::binary);
  if (!stream) {
    // libstdc++ and libc++ leave open(2)'s errno in place, which says why.
    const std::string reason =
        errno != 0 ? " (" + std::generic_category().message(errno) + ")" : std::string();
    throw Error(file.string() + ": cannot be opened for reading" + reason);
  }
  return stream;
}

// Inflates a gzip file in chunks straight onto the end of `out`. Concatenated gzip
// members (what `cat a.gz b.gz` makes) are one valid stream, as gzip(1) says.
inline void inflate_gzip(std::ifstream& stream, const std::filesystem::path& file,
                         std::uintmax_t compressed_size, std::vector<std::uint8_t>& out) {
  // The trailer's last 4 bytes hold the uncompressed size mod 2^32: a hint for the
  // first allocation, clamped because a corrupt file may claim anything.
  std::uint8_t trailer[4] = {};
  stream.seekg(-4, std::ios::end);
  stream.read(reinterpret_cast<char*>(trailer), 4);
  stream.clear();
  stream.seekg(0, std::ios::beg);
  const std::uintmax_t hinted = std::uintmax_t(trailer[0]) | std::uintmax_t(trailer[1]) << 8 |
                                std::uintmax_t(trailer[2]) << 16 | std::uintmax_t(trailer[3]) << 24;
  const std::uintmax_t floor = compressed_size + 1024, ceiling = compressed_size * 16 + 1024;
  const std::size_t start = out.size();
  out.resize(start + (hinted < floor ? floor : hinted > ceiling ? ceiling : hinted));

  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    throw Error(file.string() + ": zlib could not start a gzip decoder (out of memory?)");
  struct InflateEnd {
    z_stream* z;
    ~InflateEnd() { inflateEnd(z); }
  } end{&z};

  std::vector<char> chunk(std::size_t(1) << 20);
  std::size_t produced = start, consumed = 0;
  long members = 0;
  int status = Z_OK;
  for (;;) {
    if (z.avail_in == 0) {
      stream.read(chunk.data(), std::streamsize(chunk.size()));
      const auto got = std::size_t(stream.gcount());
      if (got == 0) {
        if (stream.bad())
          throw Error(file.string() + ": read error after " + std::to_string(consumed) +
                      " of " + std::to_string(compressed_size) + " compressed bytes");
        break;
      }
      consumed += got;
      z.next_in = reinterpret_cast<Bytef*>(chunk.data());
      z.avail_in = uInt(got);
    }
    if (status == Z_STREAM_END) {
      ++members;
      inflateReset(&z);
    }
    if (produced == out.size()) out.resize(start + (out.size() - start) * 2);
    const std::size_t room = out.size() - produced;
    z.next_out = out.data() + produced;
    z.avail_out = uInt(room < std::numeric_limits<uInt>::max() ? room
                                                               : std::numeric_limits<uInt>::max());
    status = inflate(&z, Z_NO_FLUSH);
    produced = std::size_t(z.next_out - out.data());
    const bool starved = status == Z_BUF_ERROR && (z.avail_in == 0 || z.avail_out == 0);
    if (status != Z_OK && status != Z_STREAM_END && !starved) {
      const std::string detail = z.msg ? z.msg : "zlib error " + std::to_string(status);
      if (members > 0)
        throw Error(file.string() + ": bytes after the end of its gzip stream are not another " +
                    "gzip stream (zlib: " + detail + ")");
      throw Error(file.string() + ": corrupt gzip stream after " +
                  std::to_string(produced - start) + " decompressed bytes (zlib: " + detail + ")");
    }
  }
  if (status != Z_STREAM_END)
    throw Error(file.string() + ": gzip stream ends early, after " +
                std::to_string(produced - start) + " decompressed bytes; the file is truncated");
  out.resize(produced);
}

// Appends a file's contents to `out` in one read, or inflated when the file starts
// with gzip's magic bytes 1f 8b (the name is not trusted: `gunzip` output keeps
// odd names). Appending lets a reader decode several files into one buffer in
// place. Returns whether the file was gzip; on error `out` is left as it was.
inline bool append_file(const std::filesystem::path& file, std::vector<std::uint8_t>& out) {
  std::ifstream stream = open_for_reading(file);
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(file, error);
  if (error)
    throw Error(file.string() + ": cannot read its size (" + error.message() + ")");

  unsigned char magic[2] = {};
  if (size >= 2) {
    stream.read(reinterpret_cast<char*>(magic), 2);
    stream.seekg(0, std::ios::beg);
  }
  const bool gzip = magic[0] == 0x1f && magic[1] == 0x8b;
  const std::size_t start = out.size();
  try {
    if (gzip) {
      inflate_gzip(stream, file, size, out);
    } else {
      out.resize(start + size);
      stream.read(reinterpret_cast<char*>(out.data() + start), std::streamsize(size));
      if (std::uintmax_t(stream.gcount()) != size)
        throw Error(file.string() + ": read only " + std::to_string(stream.gcount()) +
                    " of its " + std::to_string(size) + " bytes");
    }
  } catch (...) {
    out.resize(start);
    throw;
  }
  return gzip;
}

inline FileBytes read_file(const std::filesystem::path& file) {
  FileBytes contents;
  contents.gzip = append_file(file, contents.bytes);
  return contents;
}

}  // namespace detail

}  // namespace laminar::data
