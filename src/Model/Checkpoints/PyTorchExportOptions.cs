namespace MoCo.Model.Checkpoints;

/// <summary>What <see cref="PyTorchExport.Save"/> writes.</summary>
public sealed record PyTorchExportOptions
{
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
