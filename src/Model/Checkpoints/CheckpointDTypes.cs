using TorchSharp;

namespace MoCo.Model.Checkpoints;

/// <summary>The element types a checkpoint can hold, with their names in the index and their sizes.</summary>
internal static class CheckpointDTypes
{
    /// <summary>The index name of <paramref name="type"/>; throws for a type checkpoints do not hold.</summary>
    public static string Name(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => "float32",
        torch.ScalarType.Float64 => "float64",
        torch.ScalarType.BFloat16 => "bfloat16",
        torch.ScalarType.Int64 => "int64",
        torch.ScalarType.Int32 => "int32",
        torch.ScalarType.Byte => "uint8",
        torch.ScalarType.Bool => "bool",
        _ => throw new NotSupportedException(
            $"Checkpoints hold float32, float64, bfloat16, int64, int32, uint8 and bool tensors, not {type}."),
    };

    /// <summary>The scalar type named <paramref name="name"/> in an index, or false for an unknown name.</summary>
    public static bool TryParse(string name, out torch.ScalarType type, out int elementSize)
    {
        (type, elementSize) = name switch
        {
            "float32" => (torch.ScalarType.Float32, 4),
            "float64" => (torch.ScalarType.Float64, 8),
            "bfloat16" => (torch.ScalarType.BFloat16, 2),
            "int64" => (torch.ScalarType.Int64, 8),
            "int32" => (torch.ScalarType.Int32, 4),
            "uint8" => (torch.ScalarType.Byte, 1),
            "bool" => (torch.ScalarType.Bool, 1),
            _ => ((torch.ScalarType)(-1), 0),
        };
        return elementSize != 0;
    }
}
