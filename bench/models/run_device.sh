#!/bin/bash
# The single GPU-machine run: trains both models, exports GGUF, writes the PyTorch references.
# Called from the repo root as: bash bench/models/run_device.sh  (needs .carry/ from code/prepare.py)
# $OUT gets at most 8 files: log, the code GGUF in two parts (split -b 15M), 2 JSONs per model, the arith GGUF.
set -o pipefail
export PYTHONUNBUFFERED=1
cd bench/models
mkdir -p $OUT/code $OUT/reasoning /tmp/code
LOG=$OUT/log
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, numpy, sentencepiece; print('torch', torch.__version__, 'numpy', numpy.__version__, 'spm', sentencepiece.__version__)"; } 2>&1 | tee -a $LOG
# reasoning data on the CPUs while the code model trains on the GPU
python3 reasoning/train.py prep --data /tmp/rdata.npz --n ${PREP_N:-800000} > /tmp/prep.log 2>&1 &
PREP=$!
if [ -z "$SKIP_CODE" ]; then  # SKIP_CODE=1: retrain only the reasoning model
python3 code/train.py --out /tmp/code --budget-s ${CODE_BUDGET:-250} ${TINY:+--tiny} 2>&1 | tee -a $LOG
cp /tmp/code/reference.json /tmp/code/code_training.json $OUT/code/ 2>&1 | tee -a $LOG
split -b 15M /tmp/code/squeeze-code-20m.gguf $OUT/code/squeeze-code-20m.gguf.part- 2>&1 | tee -a $LOG
sha256sum /tmp/code/squeeze-code-20m.gguf | tee -a $LOG
fi
wait $PREP; cat /tmp/prep.log | tee -a $LOG
python3 reasoning/train.py train --data /tmp/rdata.npz --out $OUT/reasoning --budget-s ${REASONING_BUDGET:-110} ${TINY:+--tiny} 2>&1 | tee -a $LOG
ls -la $OUT/code $OUT/reasoning | tee -a $LOG
