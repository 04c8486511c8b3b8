// lookbook embed-text --model BUNDLE --text "..." [--text "..."] | --texts FILE
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "jobs/command.h"
#include "model/encoders.h"
#include "util/error.h"

namespace lookbook {

void DescribeEmbedText(po::options_description* options) {
  options->add_options()("model", po::value<std::string>()->required()->value_name("BUNDLE"),
                         "CLIP model bundle folder with a text tower")(
      "text", po::value<std::vector<std::string>>()->value_name("TEXT"), "a text to embed (repeatable)")(
      "texts", po::value<std::string>()->value_name("FILE"), "a file with one text per line")(
      "format", po::value<std::string>()->default_value("json")->value_name("F"),
      "json (one object per line: text, embedding) | csv (text, then one column per dimension)");
}

int RunEmbedTextCommand(const po::variables_map& vm, const CommandContext& context) {
  std::vector<std::string> texts;
  if (vm.count("text")) texts = vm["text"].as<std::vector<std::string>>();
  if (vm.count("texts")) {
    std::ifstream in(vm["texts"].as<std::string>());
    if (!in) throw UsageError("--texts: cannot read '" + vm["texts"].as<std::string>() + "'");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
  }
  if (texts.empty()) throw UsageError("give --text or --texts");
  const std::string format = vm["format"].as<std::string>();
  if (format != "json" && format != "csv") throw UsageError("--format must be json or csv");

  const TextEncoder encoder = TextEncoder::Load(LoadBundle(vm["model"].as<std::string>()), {});
  const std::vector<float> rows = encoder.Encode(texts);
  const auto d = static_cast<std::size_t>(encoder.dim());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> row(rows.begin() + static_cast<long>(i * d),
                                 rows.begin() + static_cast<long>((i + 1) * d));
    if (format == "json") {
      std::cout << nlohmann::json{{"text", texts[i]}, {"embedding", row}}.dump() << "\n";
    } else {
      std::cout << nlohmann::json(texts[i]).dump();  // a quoted CSV-safe field
      for (const float value : row) std::cout << "," << value;
      std::cout << "\n";
    }
  }
  (void)context;
  return kExitOk;
}

}  // namespace lookbook
