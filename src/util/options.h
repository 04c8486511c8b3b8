// A command's options, declared once in a table. From the table come the command line and
// INI parser (jobs/options.cpp), the copy into the command's options struct with every value
// checked against its range (a usage error, exit 2, names the option), the options that go into
// a stage's validity key, and config/README.md's option reference (`lookbook options-reference`).
// An option cannot be added without saying whether it changes the outputs: that is how a new
// output-changing option always reaches the key.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "util/error.h"
#include "util/manifest.h"

namespace lookbook {

// What an option does to a stage's outputs.
enum class OptionEffect {
  kOutput,    // changes them: part of the stage's validity key (another value redoes the work)
  kResource,  // changes how the work runs (threads, batch sizes, progress lines), not its result
  kControl,   // says what to run and where (the run folder, --force, --shard, input paths whose
              // content is checked on its own)
};

struct OptionSpec {
  std::string name;          // command line --name, INI key
  std::string value_name;    // "N", "BUNDLE"; empty for a switch
  std::string default_text;  // applied when the option is not given; empty: none
  bool required = false;
  bool repeatable = false;  // may be given several times (--image, --text)
  std::string range;        // documented bounds or choices: "1..4096", "fp32 | bf16 | fp16"
  std::string help;
  OptionEffect effect = OptionEffect::kOutput;
  // The option whose value this one needs to mean anything (--segmenter for the garment
  // options); empty: none. While that option is empty, Identity leaves this one out, so that a
  // stage's key does not change with an option that changes nothing.
  std::string only_with = "";
  // Checks one value on its own (range, choices); throws UsageError. Set by OptionTable::Add from
  // the option's parser, so that every command's values are checked before the command starts.
  std::function<void(const std::string&)> check = nullptr;
  bool is_switch() const { return value_name.empty(); }
};

// The given values of a command's options, by name (a switch that is on: {"1"}).
using OptionValues = std::map<std::string, std::vector<std::string>>;

// Strict conversions for option values: the whole text must be a number within [min, max];
// otherwise UsageError "--name must be ...". No wrap-around: "-1" is not a huge unsigned.
std::int64_t ParseIntegerOption(const std::string& name, const std::string& text, std::int64_t min, std::int64_t max);
std::uint64_t ParseUnsignedOption(const std::string& name, const std::string& text, std::uint64_t min,
                                  std::uint64_t max);
double ParseRealOption(const std::string& name, const std::string& text, double min, double max);
// A real as text that tells every two values apart (for keys).
std::string ExactReal(double value);

template <typename T>
class OptionTable {
 public:
  using Apply = std::function<void(const std::vector<std::string>& values, T* out)>;  // throws UsageError
  using Show = std::function<std::string(const T&)>;                                  // the value as the key sees it

  OptionTable& Add(OptionSpec spec, Apply apply, Show show) {
    spec.check = [apply](const std::string& value) {
      T scratch;
      apply({value}, &scratch);
    };
    entries_.push_back(Entry{std::move(spec), std::move(apply), std::move(show)});
    return *this;
  }

  // An integer member within [min, max].
  template <typename V>
  OptionTable& Integer(const std::string& name, const std::string& value_name, std::function<V&(T&)> access,
                       V default_value, V min, V max, OptionEffect effect, const std::string& help) {
    OptionSpec spec{name,  value_name, std::to_string(default_value),
                    false, false,      std::to_string(min) + ".." + std::to_string(max),
                    help,  effect};
    return Add(
        spec,
        [=](const std::vector<std::string>& values, T* out) {
          if constexpr (std::is_unsigned_v<V>) {
            access(*out) = static_cast<V>(ParseUnsignedOption(name, values.back(), min, max));
          } else {
            access(*out) = static_cast<V>(ParseIntegerOption(name, values.back(), min, max));
          }
        },
        [=](const T& options) { return std::to_string(access(const_cast<T&>(options))); });
  }

  // A real member within [min, max]; `default_text` is how the default is written.
  template <typename V>
  OptionTable& Real(const std::string& name, const std::string& value_name, std::function<V&(T&)> access,
                    const std::string& default_text, double min, double max, OptionEffect effect,
                    const std::string& help) {
    OptionSpec spec{name, value_name, default_text, false, false, RangeText(min, max), help, effect};
    return Add(
        spec,
        [=](const std::vector<std::string>& values, T* out) {
          access(*out) = static_cast<V>(ParseRealOption(name, values.back(), min, max));
        },
        [=](const T& options) { return ExactReal(static_cast<double>(access(const_cast<T&>(options)))); });
  }

  // A text member; with `choices`, only one of them. `default_text` empty: optional, no default.
  OptionTable& Text(const std::string& name, const std::string& value_name, std::function<std::string&(T&)> access,
                    const std::string& default_text, OptionEffect effect, const std::string& help,
                    std::vector<std::string> choices = {}, bool required = false) {
    std::string range;
    for (const auto& choice : choices) range += (range.empty() ? "" : " | ") + choice;
    OptionSpec spec{name, value_name, default_text, required, false, range, help, effect};
    return Add(
        spec,
        [=](const std::vector<std::string>& values, T* out) {
          const std::string& value = values.back();
          if (!choices.empty() && std::find(choices.begin(), choices.end(), value) == choices.end()) {
            throw UsageError("--" + name + " must be " + spec.range + ", not '" + value + "'");
          }
          access(*out) = value;
        },
        [=](const T& options) { return access(const_cast<T&>(options)); });
  }

  // A path member (control: where things are, not what they hold).
  OptionTable& Path(const std::string& name, const std::string& value_name,
                    std::function<std::filesystem::path&(T&)> access, bool required, const std::string& help,
                    OptionEffect effect = OptionEffect::kControl) {
    OptionSpec spec{name, value_name, "", required, false, "", help, effect};
    return Add(
        spec,
        [=](const std::vector<std::string>& values, T* out) {
          if (values.back().empty()) throw UsageError("--" + name + " must not be empty");
          access(*out) = values.back();
        },
        [=](const T& options) { return access(const_cast<T&>(options)).string(); });
  }

  // --force: redo the stage even when its published outputs are valid.
  OptionTable& Force(std::function<RerunPolicy&(T&)> access, const std::string& help) {
    OptionSpec spec{"force", "", "", false, false, "", help, OptionEffect::kControl};
    return Add(
        spec,
        [=](const std::vector<std::string>& values, T* out) {
          access(*out) = values.back() == "1" ? RerunPolicy::kForce : RerunPolicy::kReuseValid;
        },
        [](const T&) { return std::string(); });
  }

  // A switch.
  OptionTable& Flag(const std::string& name, std::function<bool&(T&)> access, OptionEffect effect,
                    const std::string& help) {
    OptionSpec spec{name, "", "", false, false, "", help, effect};
    return Add(
        spec, [=](const std::vector<std::string>& values, T* out) { access(*out) = values.back() == "1"; },
        [=](const T& options) { return std::string(access(const_cast<T&>(options)) ? "1" : "0"); });
  }

  // The option added last matters only when option `parent` (of this table) has a value.
  OptionTable& OnlyWith(const std::string& parent) {
    LB_CHECK(!entries_.empty() && entries_.back().spec.name != parent, "OnlyWith follows the option it marks");
    entries_.back().spec.only_with = parent;
    entries_.back().spec.help += " (with --" + parent + ")";
    return *this;
  }

  // Every option's value onto `out`, in table order: the given value, else the default. Throws
  // UsageError for a missing required option or a value out of its range.
  void Parse(const OptionValues& given, T* out) const {
    for (const auto& entry : entries_) {
      const auto it = given.find(entry.spec.name);
      if (it != given.end() && !it->second.empty()) {
        entry.apply(it->second, out);
      } else if (!entry.spec.default_text.empty()) {
        entry.apply({entry.spec.default_text}, out);
      } else if (entry.spec.required) {
        throw UsageError("the option '--" + entry.spec.name + "' is required but missing");
      }
    }
  }

  // The options that change outputs, name -> value as text: what a stage's key holds.
  std::map<std::string, std::string> Identity(const T& options) const {
    std::map<std::string, std::string> out;
    for (const auto& entry : entries_) {
      if (entry.spec.effect != OptionEffect::kOutput) continue;
      if (!entry.spec.only_with.empty() && Find(entry.spec.only_with).show(options).empty()) continue;
      out[entry.spec.name] = entry.show(options);
    }
    return out;
  }

  std::vector<OptionSpec> specs() const {
    std::vector<OptionSpec> out;
    for (const auto& entry : entries_) out.push_back(entry.spec);
    return out;
  }

 private:
  static std::string RangeText(double min, double max) {
    const bool open_max = max == std::numeric_limits<double>::max();
    return "[" + ExactShort(min) + ", " + (open_max ? "..." : ExactShort(max)) + "]";
  }
  static std::string ExactShort(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
  }

  struct Entry {
    OptionSpec spec;
    Apply apply;
    Show show;
  };
  const Entry& Find(const std::string& name) const {
    for (const auto& entry : entries_) {
      if (entry.spec.name == name) return entry;
    }
    ThrowInternalError(__FILE__, __LINE__, "Find", "OnlyWith names --" + name + ", which is not in the table");
  }
  std::vector<Entry> entries_;
};

}  // namespace lookbook
