"""One rank's peak memory of a real transformers model's training step under FSDP2, traced by PyTorch on the CPU.

`FakeTensorMode` runs the forward and backward at full size without allocating anything; `FSDPMemTracker`
(torch.distributed._tools) records what is live at the peak by category; a fake process group stands in for the
other ranks, so any world size runs in one process. Run as a script it prints one JSON line:

    python tests/trace_fsdp.py WORLD PRECISION LAYERS   # precision: bf16 (bf16 weights) or mixed (fp32 weights, bf16 compute)

The model is Llama-3.1-8B's shape with LAYERS decoder layers, batch 1 x 2048, full training, gradient checkpointing,
each decoder layer and the root wrapped by `fully_shard` as accelerate does. The trace covers the forward and backward
of the first step (no optimizer states yet). CPU kernels differ from CUDA ones (the loss and SDPA), so compare totals
with a stated tolerance."""
import json, sys

LLAMA_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                max_position_embeddings=8192, tie_word_embeddings=False)

def trace(world:int, precision:str, layers:int, seq_len:int=2048)->dict:
    "Bytes live at the traced peak, by FSDPMemTracker's category, plus 'Total'."
    import torch, torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, MixedPrecisionPolicy
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from transformers import LlamaConfig, LlamaForCausalLM
    dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
    mesh = init_device_mesh("cpu", (world,))   # before fake mode: the mesh is real
    cfg = LlamaConfig(num_hidden_layers=layers, **LLAMA_8B)
    cfg._attn_implementation = "sdpa"
    with FakeTensorMode():
        torch.set_default_dtype(torch.bfloat16 if precision == "bf16" else torch.float32)
        model = LlamaForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16) if precision == "mixed" else MixedPrecisionPolicy()
        for layer in model.model.layers: fully_shard(layer, mesh=mesh, mp_policy=mp)
        fully_shard(model, mesh=mesh, mp_policy=mp)
        ids = torch.randint(0, cfg.vocab_size, (1, seq_len))
        tracker = FSDPMemTracker(model); tracker.track_inputs((ids,))
        with tracker: model(input_ids=ids, labels=ids).loss.backward()
        peak = tracker.get_tracker_snapshot("peak")
    dist.destroy_process_group()
    (dev,) = peak.keys()
    return {str(k).split('.')[-1]: v for k, v in peak[dev].items()}

if __name__ == "__main__":
    world, precision, layers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print(json.dumps(trace(world, precision, layers)))
