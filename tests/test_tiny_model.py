from kositp.artifacts import file_sha256
from kositp.models.tiny import TinySpec, build_tiny_model


def test_tiny_model_loads_tokenizes_korean_and_generates(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    text = "###입력:다음 리뷰의 감정을 분류하시오. 정말 재미있는 영화였다\n\n###출력:"
    encoded = tokenizer(text, return_tensors="pt")
    assert tokenizer.decode(encoded.input_ids[0]) == text
    assert tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"
    with torch.no_grad():
        out = model.generate(**encoded, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == encoded.input_ids.shape[1] + 4


def test_same_spec_builds_identical_weights(tmp_path):
    spec = TinySpec(seed=7, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32)
    a = build_tiny_model(tmp_path / "a", spec)
    b = build_tiny_model(tmp_path / "b", spec)
    c = build_tiny_model(tmp_path / "c", TinySpec(seed=8, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32))
    assert file_sha256(a / "model.safetensors") == file_sha256(b / "model.safetensors")
    assert file_sha256(a / "tokenizer.json") == file_sha256(b / "tokenizer.json")
    assert file_sha256(a / "model.safetensors") != file_sha256(c / "model.safetensors")
