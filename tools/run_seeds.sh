#!/usr/bin/env bash
# Trains one run per seed, then tests each run's last and validation-best checkpoint once, and
# prints the results table (results_table.py). Every figure of results/README.md came from this.
#
#   OUT=runs/seeds STEPS=1500 SEEDS="1 2 3" bash run_seeds.sh [more main.py flags]
#
# Model selection sees only the 5 000 validation images (--val_size 5000, the last of the training
# file); the test set is evaluated after training, once per chosen checkpoint.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-runs/seeds}
STEPS=${STEPS:-1500}
SEEDS=${SEEDS:-"1 2 3"}
VAL_FREQ=${VAL_FREQ:-250}
DATA_DIR=${DATA_DIR:-data/mnist}
for seed in $SEEDS; do
  run="$OUT/seed$seed"
  mkdir -p "$run"
  flags=(--seed "$seed" --data_dir "$DATA_DIR" --logdir "$run/logdir" --results "$run/results" "$@")
  {
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!runs' || echo '+uncommitted')"
    echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') x $(nproc)"
    echo "load_at_start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "command python main.py --max_steps $STEPS --val_sum_freq $VAL_FREQ ${flags[*]}"
  } > "$run/run_info.txt"
  start=$(date +%s)
  python main.py --max_steps "$STEPS" --val_sum_freq "$VAL_FREQ" "${flags[@]}"
  echo "train_wall_s $(( $(date +%s) - start ))" >> "$run/run_info.txt"
  echo "load_at_end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$run/run_info.txt"
  python main.py --is_training=False --checkpoint=latest "${flags[@]}"
  # The same checkpoint twice would give the same figure: test the best one only if it differs.
  best_step=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["step"])' "$run/logdir/best/best.json")
  if [ "$best_step" != "$STEPS" ]; then
    python main.py --is_training=False --checkpoint=best "${flags[@]}"
  fi
done
python results_table.py "$OUT"/seed*
