namespace MoCo.Model.Checkpoints;

/// <summary>One entry of a checkpoint's tensor index.</summary>
/// <param name="Name">The tensor's name, unique in the checkpoint (e.g. <c>encoder_q.layer1.0.conv1.weight</c>).</param>
/// <param name="DType">The element type, as PyTorch spells it: float32, float64, bfloat16, int64, int32, uint8 or bool.</param>
/// <param name="Shape">The tensor's shape; empty for a scalar.</param>
/// <param name="Offset">Where the tensor's bytes start, counted from the start of the data section.</param>
/// <param name="Length">How many bytes the tensor takes (elements × element size, little-endian, contiguous).</param>
public sealed record CheckpointTensorInfo(string Name, string DType, long[] Shape, long Offset, long Length);
