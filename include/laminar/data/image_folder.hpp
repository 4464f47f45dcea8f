// A folder of images sorted into one sub-folder per class (root/<class>/<image>),
// as torchvision's ImageFolder reads it, decoded with stb_image into a Dataset.
// Needs the compiled stb library at link time (Debian's libstb-dev: -lstb).
#pragma once

#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"
#include "file.hpp"

namespace laminar::data {

// The dataset and its class names: classes[label] names the folder of label.
struct ImageFolder {
  Dataset data;
  std::vector<std::string> classes;
};

namespace detail {

namespace fs = std::filesystem;

// Hidden entries (".ipynb_checkpoints", macOS "._photo.jpg" forks) are never data.
inline bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

inline bool has_image_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = char(std::tolower(static_cast<unsigned char>(c)));
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".bmp";
}

// The entries of one folder, with filesystem errors as laminar::Error naming it.
inline std::vector<fs::directory_entry> folder_entries(const fs::path& folder) {
  std::error_code error;
  fs::directory_iterator it(folder, error), end;
  std::vector<fs::directory_entry> entries;
  for (; !error && it != end; it.increment(error)) entries.push_back(*it);
  if (error) throw Error(folder.string() + ": cannot be listed (" + error.message() + ")");
  return entries;
}

// Image files under `folder` and its sub-folders (followed through symbolic
// links, like torchvision's os.walk(followlinks=True)), as paths relative to the
// class folder so they sort by name the same wherever the root is.
inline void find_images(const fs::path& class_folder, const fs::path& relative, int depth,
                        std::vector<fs::path>& out) {
  const fs::path folder = class_folder / relative;
  // A symbolic link pointing back up would otherwise recurse forever.
  if (depth > 32)
    throw Error(folder.string() + ": folders nest more than 32 deep below " + class_folder.string() +
                " (a symbolic-link loop?)");
  for (const fs::directory_entry& entry : folder_entries(folder)) {
    if (is_hidden(entry.path())) continue;
    std::error_code error;
    if (entry.is_directory(error))
      find_images(class_folder, relative / entry.path().filename(), depth + 1, out);
    else if (entry.is_regular_file(error) && has_image_extension(entry.path()))
      out.push_back(relative / entry.path().filename());
  }
}

// Bilinear sampling positions along one axis, with half-pixel centres: output
// pixel o covers input coordinate (o + 0.5) * in / out - 0.5, clamped to the
// image (torch's interpolate(mode="bilinear", align_corners=False)).
struct BilinearTap {
  int low, high;
  float weight;  // of `high`; `low` gets 1 - weight
};

inline std::vector<BilinearTap> bilinear_taps(int in, int out) {
  std::vector<BilinearTap> taps(std::size_t(out), BilinearTap{});
  const double scale = double(in) / out;
  for (int o = 0; o < out; ++o) {
    double position = (o + 0.5) * scale - 0.5;
    if (position < 0) position = 0;
    int low = int(position);
    if (low > in - 1) low = in - 1;
    const int high = low < in - 1 ? low + 1 : low;
    taps[std::size_t(o)] = {low, high, float(position - low)};
  }
  return taps;
}

// stb's interleaved (H, W, C) pixels to planar (C, height, width), resized
// bilinearly when the sizes differ (aspect ratio is not kept).
inline void to_planar(const std::uint8_t* interleaved, int in_height, int in_width, int channels,
                      int height, int width, std::uint8_t* planar) {
  const long plane = long(height) * width;
  if (in_height == height && in_width == width) {
    for (long pixel = 0; pixel < plane; ++pixel)
      for (int c = 0; c < channels; ++c) planar[c * plane + pixel] = interleaved[pixel * channels + c];
    return;
  }
  const std::vector<BilinearTap> rows = bilinear_taps(in_height, height);
  const std::vector<BilinearTap> columns = bilinear_taps(in_width, width);
  const auto at = [&](int y, int x, int c) {
    return float(interleaved[(long(y) * in_width + x) * channels + c]);
  };
  for (int y = 0; y < height; ++y) {
    const BilinearTap row = rows[std::size_t(y)];
    for (int x = 0; x < width; ++x) {
      const BilinearTap column = columns[std::size_t(x)];
      for (int c = 0; c < channels; ++c) {
        const float top = at(row.low, column.low, c) * (1 - column.weight) + at(row.low, column.high, c) * column.weight;
        const float bottom =
            at(row.high, column.low, c) * (1 - column.weight) + at(row.high, column.high, c) * column.weight;
        const float value = top * (1 - row.weight) + bottom * row.weight + 0.5f;
        planar[c * plane + long(y) * width + x] = std::uint8_t(value >= 255.f ? 255.f : value);
      }
    }
  }
}

// Decodes one image file into `out`, (channels, height, width).
inline void decode_image(const fs::path& file, int height, int width, int channels, std::uint8_t* out) {
  std::ifstream stream = open_for_reading(file);
  std::error_code error;
  const std::uintmax_t size = fs::file_size(file, error);
  if (error) throw Error(file.string() + ": cannot read its size (" + error.message() + ")");
  if (size > std::uintmax_t(INT_MAX))
    throw Error(file.string() + ": is " + std::to_string(size) + " bytes, more than stb_image reads");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  stream.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size));
  if (std::uintmax_t(stream.gcount()) != size)
    throw Error(file.string() + ": read only " + std::to_string(stream.gcount()) + " of its " +
                std::to_string(size) + " bytes");

  // stb converts to the channel count asked for: grey is replicated into RGB, RGB
  // becomes grey by luminance, alpha is dropped or set opaque. Its failure
  // reason is thread-local in Debian's libstb, so decoding runs in parallel.
  int in_width = 0, in_height = 0, in_channels = 0;
  const std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), int(size), &in_width, &in_height, &in_channels, channels),
      stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw Error(file.string() + ": cannot be decoded as an image (stb_image: " +
                (reason ? reason : "no reason given") + ")");
  }
  to_planar(pixels.get(), in_height, in_width, channels, height, width, out);
}

}  // namespace detail

// Reads root/<class>/<image> into a dataset of (channels, height, width) images.
// The classes are the sub-folders of root sorted by name (byte order, as Python's
// sorted()), and an image's label is its class's index. Each class folder's
// .png, .jpg, .jpeg and .bmp files (any letter case, sub-folders included) are
// taken in order of their path inside the class folder. Hidden entries (names
// starting with '.') are skipped; other files are ignored. An image of another
// size is resized bilinearly to height x width (stretched, not cropped; no
// antialiasing, so shrink large photos beforehand for quality). channels is 1
// (grey), 3 (RGB, grey replicated) or 4 (RGBA, opaque when the file has no
// alpha). Throws laminar::Error naming the folder when root has no class folders
// or a class folder has no images, and naming the file and stb's reason when an
// image cannot be read or decoded.
inline ImageFolder image_folder(const std::filesystem::path& root, int height, int width, int channels = 3) {
  namespace fs = std::filesystem;
  if (height < 1 || width < 1)
    throw Error("image_folder: size " + std::to_string(height) + " x " + std::to_string(width) +
                " for " + root.string() + " must be at least 1 x 1");
  if (channels != 1 && channels != 3 && channels != 4)
    throw Error("image_folder: channels = " + std::to_string(channels) + " for " + root.string() +
                " is not 1 (grey), 3 (RGB) or 4 (RGBA)");
  std::error_code error;
  if (!fs::is_directory(root, error))
    throw Error(root.string() + ": no such directory (image_folder expects root/<class>/<image>)");

  ImageFolder folder;
  for (const fs::directory_entry& entry : detail::folder_entries(root))
    if (!detail::is_hidden(entry.path()) && entry.is_directory(error))
      folder.classes.push_back(entry.path().filename().string());
  std::sort(folder.classes.begin(), folder.classes.end());
  if (folder.classes.empty())
    throw Error(root.string() + ": has no class sub-folders (image_folder expects root/<class>/<image>)");
  if (folder.classes.size() > 256)
    throw Error(root.string() + ": has " + std::to_string(folder.classes.size()) +
                " class sub-folders, more than the 256 labels a byte can name");

  std::vector<fs::path> files;
  std::vector<std::uint8_t> labels;
  for (std::size_t label = 0; label < folder.classes.size(); ++label) {
    const fs::path class_folder = root / folder.classes[label];
    std::vector<fs::path> images;
    detail::find_images(class_folder, {}, 0, images);
    if (images.empty())
      throw Error(class_folder.string() + ": holds no images (.png, .jpg, .jpeg or .bmp)");
    std::sort(images.begin(), images.end(),
              [](const fs::path& a, const fs::path& b) { return a.generic_string() < b.generic_string(); });
    for (const fs::path& image : images) {
      files.push_back(class_folder / image);
      labels.push_back(std::uint8_t(label));
    }
  }

  Dataset& data = folder.data;
  data = Dataset{channels, height, width, int(folder.classes.size()), {}, std::move(labels), root.string()};
  const long count = long(files.size()), sample = data.sample_size();
  data.images.resize(std::size_t(count * sample));
  // Exceptions may not leave an OpenMP region: each file's failure is kept and
  // the first in order is thrown, so the error does not depend on thread timing.
  std::vector<std::string> failures(files.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (long i = 0; i < count; ++i) {
    try {
      detail::decode_image(files[std::size_t(i)], height, width, channels, data.images.data() + i * sample);
    } catch (const Error& failure) {
      failures[std::size_t(i)] = failure.what();
    } catch (const std::exception& failure) {  // e.g. std::bad_alloc, which names no file
      failures[std::size_t(i)] = files[std::size_t(i)].string() + ": " + failure.what();
    }
  }
  for (const std::string& failure : failures)
    if (!failure.empty()) throw Error(failure);
  return folder;
}

}  // namespace laminar::data
