#include "dedup/neighbours.h"

#include <gtest/gtest.h>

#include <map>

#include "dedup/decisions.h"
#include "util/error.h"

namespace lookbook {
namespace {

// Keys for the tie-break: image id i is "k<i>" (so 10 < 9 as keys: "k10" < "k9").
const std::string& Key(std::int64_t id) {
  static std::map<std::int64_t, std::string> keys;
  auto it = keys.find(id);
  if (it == keys.end()) it = keys.emplace(id, "k" + std::to_string(id)).first;
  return it->second;
}

std::vector<std::int64_t> Images(const std::vector<Neighbour>& entries) {
  std::vector<std::int64_t> out;
  for (const auto& entry : entries) out.push_back(entry.image);
  return out;
}

TEST(Neighbours, ListFromHitsKeepsThoseAtTheFloorInListOrder) {
  const std::int64_t ids[] = {4, 9, 2, 7, -1};
  const std::map<std::int64_t, float> cosine = {{4, 1.0f}, {9, 0.95f}, {2, 0.97f}, {7, 0.5f}};
  auto exact = [&](std::int64_t id) { return cosine.at(id); };
  const NeighbourList list = ListFromHits(ids, 5, 4, 0.9f, exact, Key);
  EXPECT_EQ(Images(list.entries), (std::vector<std::int64_t>{4, 2, 9}));  // by cosine, 7 below the floor
  EXPECT_FALSE(list.truncated);  // 3 of 4 places: every image at the floor is in it
  const NeighbourList full = ListFromHits(ids, 5, 3, 0.9f, exact, Key);
  EXPECT_EQ(Images(full.entries), (std::vector<std::int64_t>{4, 2, 9}));
  EXPECT_TRUE(full.truncated);  // all 3 places reached the floor: more may have
  const NeighbourList two = ListFromHits(ids, 5, 2, 0.9f, exact, Key);
  EXPECT_EQ(Images(two.entries), (std::vector<std::int64_t>{4, 2}));  // the best 2, wherever the index put them
}

TEST(Neighbours, TiesAreBrokenByKeyNotByWhereTheIndexPutThem) {
  const std::int64_t ids[] = {1, 9, 10, 3};  // 9 and 10 are copies of one picture
  const std::map<std::int64_t, float> cosine = {{1, 1.0f}, {9, 0.96f}, {10, 0.96f}, {3, 0.91f}};
  const NeighbourList list = ListFromHits(
      ids, 4, 2, 0.9f, [&](std::int64_t id) { return cosine.at(id); }, Key);
  EXPECT_EQ(Images(list.entries), (std::vector<std::int64_t>{1, 10}));  // "k10" < "k9"
  const float scores[] = {1.0f, 0.96f, 0.96f, 0.91f};
  EXPECT_TRUE(MayEndOnATie(scores, ids, 3, 2, 0.9f, 100));   // the 3rd hit ties the 2nd: search further
  EXPECT_FALSE(MayEndOnATie(scores, ids, 4, 2, 0.9f, 100));  // the 4th does not
  EXPECT_FALSE(MayEndOnATie(scores, ids, 3, 2, 0.9f, 3));    // nothing more to find
  EXPECT_FALSE(MayEndOnATie(scores, ids, 2, 2, 0.9f, 100));  // no hit past the list to tell
}

TEST(Neighbours, ListFromHitsStopsAtEmptySlots) {
  const std::int64_t ids[] = {3, -1, -1};
  const NeighbourList list = ListFromHits(
      ids, 3, 3, 0.9f, [](std::int64_t) { return 1.0f; }, Key);
  EXPECT_EQ(Images(list.entries), (std::vector<std::int64_t>{3}));
  EXPECT_FALSE(list.truncated);
}

TEST(Neighbours, MergeListTakesTheBestAndBreaksTiesByKey) {
  const NeighbourList merged = MergeList({{1, 1.0f}, {5, 0.93f}}, {{8, 0.95f}, {3, 0.93f}}, false, 3, Key);
  EXPECT_EQ(Images(merged.entries), (std::vector<std::int64_t>{1, 8, 3}));  // 3 and 5 tie: "k3" first
  EXPECT_TRUE(merged.truncated);                                            // 5 was cut
  const NeighbourList short_list = MergeList({{1, 1.0f}}, {{8, 0.95f}}, false, 3, Key);
  EXPECT_FALSE(short_list.truncated);
  EXPECT_TRUE(MergeList({{1, 1.0f}}, {}, true, 3, Key).truncated);  // it was
  // Exactly full: marked as a search marks a list whose places all reached the floor.
  EXPECT_TRUE(MergeList({{1, 1.0f}}, {{8, 0.95f}, {3, 0.93f}}, false, 3, Key).truncated);
}

// Last night: images a (row 0), b (1), c (2), d (3). a's list is truncated and holds c; b's list
// is complete and holds d; d lists itself only.
NeighbourLists LastNight() {
  NeighbourLists lists;
  lists.list_size = 2;
  lists.list_floor = 0.88;
  lists.image = {10, 11, 12, 13};
  lists.key = {"a", "b", "c", "d"};
  lists.checksum = {1, 2, 3, 4};
  lists.truncated = {1, 0, 0, 0};
  lists.offset = {0, 2, 4, 5, 6};
  lists.member = {0, 2, 1, 3, 2, 3};
  lists.score = {1.0f, 0.95f, 1.0f, 0.91f, 1.0f, 1.0f};
  return lists;
}

TEST(Neighbours, PlanNightSearchesWhatChangedAndCarriesTheRest) {
  // Tonight: a and b unchanged (new ids), c changed in place, d removed, e new.
  const std::vector<ImageIdentity> tonight = {{100, "a", 1}, {101, "b", 2}, {102, "c", 33}, {103, "e", 5}};
  const NightPlan plan = PlanNight(tonight, LastNight());
  EXPECT_EQ(plan.fresh, (std::vector<std::int64_t>{102, 103}));  // c (changed) and e (new)
  EXPECT_EQ(plan.requery, (std::vector<std::int64_t>{100}));     // a: truncated, and lost c
  EXPECT_EQ(plan.removed, 2);                                    // c's old content and d
  ASSERT_EQ(plan.carried.size(), 1u);
  const NeighbourList& b = plan.carried.at(101);
  EXPECT_EQ(Images(b.entries), (std::vector<std::int64_t>{101}));  // d dropped; in tonight's ids
  EXPECT_FALSE(b.truncated);                                       // complete before, complete without d
}

TEST(Neighbours, NothingChangedSearchesNothing) {
  const std::vector<ImageIdentity> tonight = {{0, "a", 1}, {1, "b", 2}, {2, "c", 3}, {3, "d", 4}};
  const NightPlan plan = PlanNight(tonight, LastNight());
  EXPECT_TRUE(plan.fresh.empty());
  EXPECT_TRUE(plan.requery.empty());
  EXPECT_EQ(plan.removed, 0);
  EXPECT_EQ(plan.carried.size(), 4u);
  EXPECT_EQ(Images(plan.carried.at(0).entries), (std::vector<std::int64_t>{0, 2}));
  EXPECT_TRUE(plan.carried.at(0).truncated);
}

TEST(Neighbours, PreviousVerificationIsFoundByContentInKeyOrder) {
  DedupFile previous;
  previous.neighbours = LastNight();
  ScoredPair pair;
  pair.a = 12;  // c
  pair.b = 10;  // a
  pair.aligned = 0.98f;
  ScoredPair unverified = pair;
  unverified.b = 11;
  unverified.aligned = std::numeric_limits<float>::quiet_NaN();
  previous.candidates = {pair, unverified};
  const auto aligned = PreviousAligned(previous);
  ASSERT_EQ(aligned.size(), 1u);  // NaN: verify again
  EXPECT_EQ(aligned.at(PairIdentity("a", 1, "c", 3)).aligned, 0.98f);
  EXPECT_EQ(PairIdentity("c", 3, "a", 1), PairIdentity("a", 1, "c", 3));
  EXPECT_FALSE(aligned.count(PairIdentity("a", 1, "c", 4)));  // c changed: not the same pair
}

TEST(Decisions, ParsesRowsAndRejectsBadOnesWithReasons) {
  const DecisionsFile file = ParseDecisions("decisions.csv",
                                            "image_a,image_b,decision,who,when\n"
                                            "P1/image_1,P2/image_1,duplicate,ana,2026-11-29\n"
                                            "P1/image_1,P3/image_1,not_duplicate,ben,2026-11-30\n"
                                            "P1/image_1,P1/image_1,duplicate,ana,2026-11-29\n"
                                            "P1/image_1,,duplicate,ana,2026-11-29\n"
                                            "P1/image_1,P4/image_1,maybe,ana,2026-11-29\n"
                                            "P1/image_1,P4/image_1,duplicate\n");
  EXPECT_EQ(file.total, 6);
  ASSERT_EQ(file.decisions.size(), 2u);
  EXPECT_TRUE(file.decisions[0].duplicate);
  EXPECT_FALSE(file.decisions[1].duplicate);
  EXPECT_EQ(file.decisions[1].who, "ben");
  ASSERT_EQ(file.rejected.size(), 4u);
  EXPECT_EQ(static_cast<std::int64_t>(file.decisions.size() + file.rejected.size()), file.total);
  EXPECT_NE(file.rejected[0].reason.find("the same image"), std::string::npos);
  EXPECT_NE(file.rejected[1].reason.find("empty"), std::string::npos);
  EXPECT_NE(file.rejected[2].reason.find("'maybe'"), std::string::npos);
  EXPECT_NE(file.rejected[3].reason.find("3 fields"), std::string::npos);
}

TEST(Decisions, AWrongHeaderIsAnInputError) {
  EXPECT_THROW(ParseDecisions("d.csv", "a,b,decision\nx,y,duplicate\n"), InputError);
  EXPECT_THROW(ParseDecisions("d.csv", ""), InputError);
}

}  // namespace
}  // namespace lookbook
