namespace MoCo.Model.Checkpoints;

/// <summary>The file format of an export.</summary>
public enum ExportFormat
{
    /// <summary><c>torch.save</c>'s zip-pickle of tensors (<c>torch.load</c>, then <c>load_state_dict</c>).</summary>
    Pth,

    /// <summary>safetensors (Hugging Face's format: an 8-byte header length, a JSON header, raw little-endian tensors).</summary>
    Safetensors,

    /// <summary>
    /// The <c>.pkl</c> that facebookresearch/moco's <c>detection/convert-pretrain-to-detectron2.py</c> writes: numpy
    /// arrays under detectron2 names in a pickle (<see cref="Detectron2Pickle"/>); implies <see cref="PyTorchExportOptions.Detectron2Names"/>.
    /// </summary>
    Detectron2Pkl,
}

/// <summary>What <see cref="PyTorchExport.Save"/> writes.</summary>
public sealed record PyTorchExportOptions
{
    /// <summary>The file format (default <see cref="ExportFormat.Pth"/>).</summary>
    public ExportFormat Format { get; init; } = ExportFormat.Pth;

    /// <summary>
    /// Keep the <c>fc.*</c> head (a linear <c>fc.weight/fc.bias</c> or an MLP <c>fc.0.*/fc.2.*</c>).
    /// Default false: the backbone only, to load into a torchvision ResNet whose <c>fc</c> is <c>nn.Identity()</c>.
    /// </summary>
    public bool IncludeHead { get; init; }

    /// <summary>
    /// Rename the keys for detectron2 exactly as facebookresearch/moco's
    /// <c>detection/convert-pretrain-to-detectron2.py</c> does, and wrap them as
    /// <c>{"model": state_dict, "__author__": "MOCO", "matching_heuristics": True}</c>.
    /// </summary>
    public bool Detectron2Names { get; init; }
}
