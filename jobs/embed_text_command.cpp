// lookbook embed-text --model BUNDLE --text "..." [--text "..."] | --texts FILE
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "jobs/command.h"
#include "jobs/device_options.h"
#include "jobs/options.h"
#include "model/encoders.h"
#include "util/error.h"

namespace lookbook {

namespace {

struct EmbedTextArgs {
  InferenceOptions inference;
  std::filesystem::path model, texts_file;
  std::vector<std::string> texts;
  std::string format = "json";
};

const OptionTable<EmbedTextArgs>& EmbedTextOptionTable() {
  static const OptionTable<EmbedTextArgs> table = [] {
    using O = EmbedTextArgs;
    OptionTable<O> t;
    t.Path(
        "model", "BUNDLE", [](O& o) -> std::filesystem::path& { return o.model; }, true,
        "CLIP model bundle folder with a text tower");
    t.Add(
        OptionSpec{"text", "TEXT", "", false, true, "", "a text to embed (repeatable)", OptionEffect::kControl},
        [](const std::vector<std::string>& values, O* out) { out->texts = values; },
        [](const O&) { return std::string(); });
    t.Path(
        "texts", "FILE", [](O& o) -> std::filesystem::path& { return o.texts_file; }, false,
        "a file with one text per line");
    t.Text("format", "F", [](O& o) -> std::string& { return o.format; }, "json", OptionEffect::kOutput,
           "json (one object per line: text, embedding) | csv (text, then one column per dimension)", {"json", "csv"});
    AddDeviceOptions(&t, [](O& o) -> InferenceOptions& { return o.inference; });
    return t;
  }();
  return table;
}

}  // namespace

std::vector<OptionSpec> EmbedTextSpecs() { return EmbedTextOptionTable().specs(); }

int RunEmbedTextCommand(const po::variables_map& vm, const CommandContext& context) {
  EmbedTextArgs args;
  EmbedTextOptionTable().Parse(GivenValues(vm, EmbedTextOptionTable().specs()), &args);
  std::vector<std::string> texts = args.texts;
  if (!args.texts_file.empty()) {
    std::ifstream in(args.texts_file);
    if (!in) throw UsageError("--texts: cannot read '" + args.texts_file.string() + "'");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (texts.empty()) throw UsageError("give --text or --texts");
  const std::string& format = args.format;

  const TextEncoder encoder = TextEncoder::Load(LoadBundle(args.model), args.inference);
  const std::vector<float> rows = encoder.Encode(texts);
  const auto d = static_cast<std::size_t>(encoder.dim());
  std::int64_t unreadable = 0, cut = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> row(rows.begin() + static_cast<long>(i * d),
                                 rows.begin() + static_cast<long>((i + 1) * d));
    // A text of words the model does not know embeds as an empty one would: said, not silent.
    const TextTokens tokens = encoder.Count(texts[i]);
    if (tokens.unknown == tokens.tokens) {
      ++unreadable;
      spdlog::warn("text {}: no word the text model knows ({} unknown): its embedding is that of an empty text", i + 1,
                   tokens.unknown);
    } else if (tokens.unknown > 0) {
      spdlog::warn("text {}: {} of {} words unknown to the text model", i + 1, tokens.unknown, tokens.tokens);
    }
    if (tokens.kept < tokens.tokens) {
      ++cut;
      spdlog::warn("text {}: cut to the model's context, {} of {} tokens read", i + 1, tokens.kept, tokens.tokens);
    }
    if (format == "json") {
      std::cout << nlohmann::json{{"text", texts[i]},
                                  {"embedding", row},
                                  {"tokens", tokens.tokens},
                                  {"unknown_words", tokens.unknown},
                                  {"truncated", tokens.kept < tokens.tokens}}
                       .dump()
                << "\n";
    } else {
      std::cout << nlohmann::json(texts[i]).dump();  // a quoted CSV-safe field
      for (const float value : row) std::cout << "," << value;
      std::cout << "\n";
    }
  }
  if (unreadable + cut > 0) {
    spdlog::warn("{} of {} text(s) had no word the model knows, {} were cut to the context", unreadable, texts.size(),
                 cut);
  }
  (void)context;
  return kExitOk;
}

}  // namespace lookbook
