"""Inputs of ``masked-lm/``: a user's masked LM folder and an unlabelled .txt corpus, from registry assets only.

The model is the built-in ``minilm-l6-mlm`` baseline (the all-MiniLM-L6-v2 encoder under
DistilBERT's MLM head, the head fitted on IMDB train reviews with the encoder frozen;
``harness.models.mlm``) saved with ``save_pretrained`` as a user would save theirs; the corpus is
the 4,000 MR sentences (never seen by the head), one per line.

    python make_masked_lm_inputs.py DIR   ->  DIR/minilm-l6-mlm/ and DIR/mr.txt
"""
import sys
from pathlib import Path

from harness.data import text
from harness.models.profiles import get_profile

out = Path(sys.argv[1])
model = get_profile("minilm-l6-mlm").load_fp32()
model.save_pretrained(out / "minilm-l6-mlm")
text.load_tokenizer().save_pretrained(out / "minilm-l6-mlm")
mr = text.mr_sentences()
(out / "mr.txt").write_text("\n".join(t.replace("\n", " ") for t in mr.texts) + "\n", encoding="utf-8")
print(f"{type(model).__name__} in {out / 'minilm-l6-mlm'}, {len(mr.texts)} sentences in {out / 'mr.txt'}")
