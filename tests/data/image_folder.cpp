// image_folder: root/<class>/<image> read as torchvision's ImageFolder does, on
// small images written here with stb_image_write.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/image_folder.hpp>

namespace {

namespace fs = std::filesystem;
using laminar::Error;
using laminar::data::image_folder;
using Bytes = std::vector<std::uint8_t>;
using test_files::contains;

// A fresh, empty folder for one test case's tree.
fs::path fresh_root(const std::string& name) {
  const fs::path root = test_files::scratch("image_folder", name);
  fs::remove_all(root);
  fs::create_directories(root);
  return root;
}

// Writes (height, width, channels) interleaved pixels as PNG, or BMP when the
// name says so (any case).
void write_image(const fs::path& file, int width, int height, int channels, const Bytes& pixels) {
  REQUIRE(pixels.size() == std::size_t(width * height * channels));
  fs::create_directories(file.parent_path());
  std::string extension = file.extension().string();
  for (char& c : extension) c = char(std::tolower(static_cast<unsigned char>(c)));
  const int written = extension == ".bmp" ? stbi_write_bmp(file.c_str(), width, height, channels, pixels.data())
                                          : stbi_write_png(file.c_str(), width, height, channels, pixels.data(),
                                                           width * channels);
  REQUIRE(written != 0);
}

// A width x height image of one grey value.
void write_flat(const fs::path& file, std::uint8_t value, int width = 2, int height = 2) {
  write_image(file, width, height, 1, Bytes(std::size_t(width * height), value));
}

}  // namespace

TEST_CASE("image_folder takes the class sub-folders sorted by name as labels 0, 1, 2, ...") {
  const fs::path root = fresh_root("sorted-classes");
  write_flat(root / "zebra" / "a.png", 30);
  write_flat(root / "Apple" / "a.png", 10);
  write_flat(root / "mango" / "a.png", 20);
  const auto folder = image_folder(root, 2, 2, 1);
  CHECK(folder.classes == std::vector<std::string>{"Apple", "mango", "zebra"});  // byte order: capitals first
  CHECK(folder.data.labels == Bytes{0, 1, 2});
  CHECK(folder.data.image(0)[0] == 10);
  CHECK(folder.data.image(1)[0] == 20);
  CHECK(folder.data.image(2)[0] == 30);
  CHECK(folder.data.classes == 3);
  CHECK(folder.data.source == root.string());
}

TEST_CASE("image_folder takes a class's images in order of their names, sub-folders included") {
  const fs::path root = fresh_root("sorted-files");
  write_flat(root / "only" / "c.png", 3);
  write_flat(root / "only" / "a.png", 1);
  write_flat(root / "only" / "b" / "x.png", 2);  // "b/x.png" sorts between a.png and c.png
  const auto folder = image_folder(root, 2, 2, 1);
  REQUIRE(folder.data.size() == 3);
  CHECK(folder.data.image(0)[0] == 1);
  CHECK(folder.data.image(1)[0] == 2);
  CHECK(folder.data.image(2)[0] == 3);
}

TEST_CASE("image_folder reads .png .jpg .jpeg .bmp in any letter case and skips other and hidden files") {
  const fs::path root = fresh_root("extensions");
  write_flat(root / "c" / "1.PNG", 50);
  write_flat(root / "c" / "2.Bmp", 60);
  {
    const Bytes grey(16 * 16, 128);
    REQUIRE(stbi_write_jpg((root / "c" / "3.JpEg").c_str(), 16, 16, 1, grey.data(), 95) != 0);
    REQUIRE(stbi_write_jpg((root / "c" / "4.jpg").c_str(), 16, 16, 1, grey.data(), 95) != 0);
  }
  test_files::write_plain("image_folder", "extensions/c/notes.txt", {'h', 'i'});
  test_files::write_plain("image_folder", "extensions/c/._5.png", {0, 1, 2});  // macOS fork: not an image
  write_flat(root / ".cache" / "x.png", 1);  // a hidden folder is no class
  const auto folder = image_folder(root, 16, 16, 1);
  CHECK(folder.classes == std::vector<std::string>{"c"});
  REQUIRE(folder.data.size() == 4);
  CHECK(folder.data.image(0)[0] == 50);
  CHECK(folder.data.image(1)[0] == 60);
  CHECK(std::abs(int(folder.data.image(2)[0]) - 128) <= 2);  // JPEG is lossy
  CHECK(std::abs(int(folder.data.image(3)[100]) - 128) <= 2);
}

TEST_CASE("image_folder stores pixels channel-major, (C, H, W)") {
  const fs::path root = fresh_root("layout");
  // 2 x 1 RGB: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6).
  write_image(root / "c" / "rgb.png", 2, 1, 3, {1, 2, 3, 4, 5, 6});
  const auto folder = image_folder(root, 1, 2, 3);
  CHECK(Bytes(folder.data.image(0), folder.data.image(0) + 6) == Bytes{1, 4, 2, 5, 3, 6});
}

TEST_CASE("image_folder replicates a grey image into all three channels") {
  const fs::path root = fresh_root("grey-to-rgb");
  write_image(root / "c" / "grey.png", 2, 1, 1, {40, 200});
  const auto folder = image_folder(root, 1, 2);
  CHECK(folder.data.channels == 3);
  CHECK(Bytes(folder.data.image(0), folder.data.image(0) + 6) == Bytes{40, 200, 40, 200, 40, 200});
}

TEST_CASE("image_folder resizes a 4x4 image to 2x2 bilinearly, each output the mean of its 2x2 block") {
  const fs::path root = fresh_root("shrink");
  // Half-pixel centres: output (y, x) samples input (2y + 0.5, 2x + 0.5), midway
  // between four pixels.
  const Bytes pixels = {0,   10,  20,  30,   //
                        40,  50,  60,  70,   //
                        80,  90,  100, 110,  //
                        120, 130, 140, 150};
  write_image(root / "c" / "big.png", 4, 4, 1, pixels);
  const auto folder = image_folder(root, 2, 2, 1);
  CHECK(Bytes(folder.data.image(0), folder.data.image(0) + 4) == Bytes{25, 45, 105, 125});
}

TEST_CASE("image_folder enlarges a 1x2 image to 1x4 by interpolating between the pixel centres") {
  const fs::path root = fresh_root("grow");
  write_image(root / "c" / "small.png", 2, 1, 1, {0, 200});
  const auto folder = image_folder(root, 1, 4, 1);
  // Output x samples input (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  CHECK(Bytes(folder.data.image(0), folder.data.image(0) + 4) == Bytes{0, 50, 150, 200});
}

TEST_CASE("image_folder with a corrupt image is an error naming that file and stb's reason") {
  const fs::path root = fresh_root("corrupt");
  write_flat(root / "c" / "good.png", 1);
  const fs::path bad =
      test_files::write_plain("image_folder", "corrupt/c/bad.png", {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0});
  CHECK_THROWS_WITH_AS(image_folder(root, 2, 2, 1),
                       contains(bad.string() + ": cannot be decoded as an image (stb_image: "), Error);
}

TEST_CASE("image_folder with an empty root is an error naming the root") {
  const fs::path root = fresh_root("empty-root");
  CHECK_THROWS_WITH_AS(image_folder(root, 2, 2), contains(root.string() + ": has no class sub-folders"), Error);
}

TEST_CASE("image_folder with a class folder holding no images is an error naming that folder") {
  const fs::path root = fresh_root("empty-class");
  write_flat(root / "full" / "a.png", 1);
  fs::create_directories(root / "hollow");
  test_files::write_plain("image_folder", "empty-class/hollow/readme.txt", {'x'});
  CHECK_THROWS_WITH_AS(image_folder(root, 2, 2),
                       contains((root / "hollow").string() + ": holds no images (.png, .jpg, .jpeg or .bmp)"), Error);
}

TEST_CASE("image_folder with a missing root or a bad size or channel count is an error") {
  const fs::path root = fresh_root("arguments");
  CHECK_THROWS_WITH_AS(image_folder(root / "absent", 2, 2), contains((root / "absent").string() + ": no such directory"),
                       Error);
  CHECK_THROWS_WITH_AS(image_folder(root, 0, 2), contains("size 0 x 2"), Error);
  CHECK_THROWS_WITH_AS(image_folder(root, 2, 2, 2), contains("channels = 2"), Error);
}
