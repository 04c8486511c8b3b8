#!/usr/bin/env bash
# Runs lookbook end to end on the built-in demo, on a fresh Debian 12 machine:
# installs the missing packages, builds, writes the demo catalog (Fashion-MNIST, test split)
# and runs the pipeline on it with 2 MPI ranks. Today's pipeline: ingest, embed (with the
# demo CLIP bundle in models/demo/clip and, on the outfit photos, the demo U-Net in
# models/demo/unet), index, dedup, recs (substitutes, outfits), the garment, dedup and
# recommendation evaluations against the demo's truth, the HTML report, and a query with one
# outfit photo. Then the randomized test split: the same kind of catalog with its outfit photos
# composed unlike the demo's flat lays (demo-catalog --outfits random), its garment and outfit
# figures printed beside the demo's.
#   jobs/demo.sh [RUN_DIR]      (default: build/demo/run; the randomized split in RUN_DIR-random)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source jobs/lookbook-env.sh

jobs/setup-debian.sh build
cmake -S . -B build/release -G Ninja -DLOOKBOOK_PRESET=release >/dev/null
cmake --build build/release --target lookbook
lookbook=build/release/jobs/lookbook
source jobs/blas-env.sh

data=build/demo/data
run=${1:-build/demo/run}
mpirun=(mpirun -np 2 --oversubscribe)

"$lookbook" demo-catalog --config config/demo.ini --out "$data"
"${mpirun[@]}" "$lookbook" ingest --config config/demo.ini \
  --catalog "$data/catalog.csv" --images "$data/images" --run "$run"
"${mpirun[@]}" "$lookbook" embed --config config/demo.ini --model models/demo/clip --segmenter models/demo/unet --run "$run"
"$lookbook" eval garments --run "$run" --truth "$data/truth"
"${mpirun[@]}" "$lookbook" index --config config/demo.ini --run "$run"
"${mpirun[@]}" "$lookbook" dedup --config config/demo.ini --run "$run"
"$lookbook" eval dedup --run "$run" --truth "$data/truth/duplicates.csv" --negatives "$data/truth/colour_variants.csv" \
  --log-level warn
"${mpirun[@]}" "$lookbook" recs --config config/demo.ini --run "$run"
"$lookbook" eval recs --run "$run" --truth "$data/truth/outfits.csv" --products "$data/truth/products.csv" --log-level warn
"$lookbook" embed-text --model models/demo/clip --text "a photo of a red dress" --format csv | cut -c1-80

# The report people look at: overview, duplicate clusters, substitutes, outfits, rejects.
"$lookbook" report --run "$run"

# A new photo: one of the demo's outfit photos, its garments matched from the command line.
photo=$data/images/$(sed -n 2p "$data/truth/outfits.csv" | cut -d, -f1)
"$lookbook" query --run "$run" --models-root models/demo --image "$photo" --top 3

# The randomized test split: 1,200 products (about 100 outfit photos), other seed, outfit photos
# of other frames, backgrounds, layouts, scales, turns, shadows and JPEG qualities.
random_data=build/demo/data-random
random_run=$run-random
"$lookbook" demo-catalog --config config/demo.ini --items 1200 --seed 8 --outfits random --out "$random_data"
"${mpirun[@]}" "$lookbook" ingest --config config/demo.ini \
  --catalog "$random_data/catalog.csv" --images "$random_data/images" --run "$random_run"
"${mpirun[@]}" "$lookbook" embed --config config/demo.ini --model models/demo/clip --segmenter models/demo/unet \
  --run "$random_run"
"${mpirun[@]}" "$lookbook" index --config config/demo.ini --run "$random_run"
"${mpirun[@]}" "$lookbook" dedup --config config/demo.ini --run "$random_run"
"${mpirun[@]}" "$lookbook" recs --config config/demo.ini --run "$random_run"
echo "randomized test split ($random_data):"
"$lookbook" eval garments --run "$random_run" --truth "$random_data/truth"
"$lookbook" eval recs --run "$random_run" --truth "$random_data/truth/outfits.csv" \
  --products "$random_data/truth/products.csv" --log-level warn

cat <<DONE

lookbook demo finished.
  demo catalog:  $data/catalog.csv  (images in $data/images, ground truth in $data/truth)
  shards:        $run/ingest/shard-*.csv
  rejects:       $run/ingest/rejects.csv
  manifest:      $run/ingest/manifest.json
  embeddings:    $run/embed/shard-*.h5, all shards as one: $run/embed/catalog.h5 (h5py: f["images/embedding"])
  garments:      $run/embed/shard-*.h5 /garments (slot, box, area, score, embedding) and /masks
  index:         $run/index/shard-*.faiss (Python: faiss.read_index)
  duplicates:    $run/dedup/pairs.csv, $run/dedup/clusters.csv, $run/dedup/dedup.h5
  recommended:   $run/recs/substitutes.csv, $run/recs/outfits.csv, $run/recs/recs.h5
  evaluations:   $run/eval/dedup.json (precision, recall, F1, threshold sweep), $run/eval/recs.json
  randomized:    $random_run (outfit photos unlike the demo's; $random_run/eval/recs.json)
  query:         $lookbook query --run $run --models-root models/demo --image PHOTO [--text "a red dress"]
  status:        $lookbook status $run   ($lookbook verify $run rechecks every checksum)

  report:        $run/report/index.html  (open it in a browser)
DONE
